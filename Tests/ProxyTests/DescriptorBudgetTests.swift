import Proxy
import Testing

/// The descriptor budget, event by event: what it grants, refuses and gets back.
@Suite("Descriptor budget")
struct DescriptorBudgetTests {
    @Test("grants up to the limit less the baseline and the reserve, then refuses")
    func grantsThenRefuses() {
        let budget = DescriptorBudget(limit: 100, baseline: 10, reserve: 20)
        for _ in 0..<70 {
            #expect(budget.take())
        }
        #expect(budget.inUse == 70)
        #expect(!budget.take())
        #expect(budget.refusals == 1)
        #expect(budget.inUse == 70)
    }

    @Test("a descriptor given back can be taken again")
    func givesBack() {
        let budget = DescriptorBudget(limit: 100, baseline: 0, reserve: 98)
        #expect(budget.take())
        #expect(budget.take())
        #expect(!budget.take())
        budget.give()
        #expect(budget.take())
    }

    @Test("a descriptor that must be kept counts even past the budget, and holds the next one off")
    func takenRegardless() {
        let budget = DescriptorBudget(limit: 10, baseline: 0, reserve: 8)
        #expect(budget.take())
        #expect(budget.take())
        budget.takeRegardless()
        #expect(budget.inUse == 3)
        #expect(!budget.take())
        budget.give()
        #expect(!budget.take())
        budget.give()
        #expect(budget.take())
    }

    @Test("the reserve is a twentieth of the limit, at least 64")
    func reserve() {
        #expect(DescriptorBudget(limit: 20000, baseline: 0).reserve == 1000)
        #expect(DescriptorBudget(limit: 256, baseline: 0).reserve == 64)
    }

    @Test("the first refusal, and every thousandth after it, is worth a warning")
    func refusalsWorthLogging() {
        let budget = DescriptorBudget(limit: 1, baseline: 0, reserve: 1)
        var logged: [Int] = []
        for attempt in 1...2001 {
            #expect(!budget.take())
            if budget.refusalWorthLogging() {
                logged.append(attempt)
            }
        }
        #expect(logged == [1, 1001, 2001])
    }
}

import Foundation
import Testing

@testable import Store

/// ``ChainPlanner``, the `prev-id` chain rules both backends' writers share, event by event: what each item's step is,
/// and what the chain position, sequence and buffer are after it.
@Suite struct ChainPlannerTests {
    private func item(_ id: String?, after prevId: String? = nil, noSeq: Bool = false, size: Int = 1) -> NewItem {
        NewItem(channel: "c", id: id, prevId: prevId, formats: Data(), size: size, bypassesReordering: noSeq)
    }

    /// Applies one item as the writers do (log it and its successors, or buffer it) and returns its step and the
    /// ids that entered the log.
    private func apply(
        _ item: NewItem,
        to planner: inout ChainPlanner,
        at time: Int64 = 0
    ) -> (
        ChainPlanner.Step, [String?]
    ) {
        let step = planner.step(for: item)
        var logged: [String?] = []
        switch step {
        case .alreadyWaiting:
            break
        case .wait:
            planner.wait(item, receivedAt: time)
        case .log:
            _ = planner.enter(item)
            logged.append(item.id)
            while let next = planner.nextSuccessor() {
                _ = planner.enter(next.item)
                logged.append(next.item.id)
            }
        }
        return (step, logged)
    }

    @Test func anItemThatFollowsThePositionIsLoggedAndMovesIt() {
        var planner = ChainPlanner(lastSequence: 0, chainLastId: nil, waiting: [])
        // No position yet: whatever the prev-id, the first item enters the log.
        #expect(self.apply(self.item("a", after: "zz"), to: &planner) == (.log, ["a"]))
        #expect(planner.lastSequence == 1)
        #expect(planner.chainLastId == "a")
        #expect(self.apply(self.item("b", after: "a", size: 5), to: &planner) == (.log, ["b"]))
        #expect(planner.lastSequence == 2)
        #expect(planner.addedItems == 2)
        #expect(planner.addedBytes == 6)
        #expect(planner.changed)
    }

    @Test func anItemAheadOfItsPredecessorWaitsAndEntersRightAfterIt() {
        var planner = ChainPlanner(lastSequence: 7, chainLastId: "a", waiting: [])
        #expect(self.apply(self.item("c", after: "b"), to: &planner) == (.wait, []))
        #expect(self.apply(self.item("d", after: "c"), to: &planner) == (.wait, []))
        #expect(planner.waiting.map(\.item.id) == ["c", "d"])
        #expect(planner.lastSequence == 7)
        #expect(!planner.changed)
        // b unblocks c, which unblocks d: three sequences in chain order.
        #expect(self.apply(self.item("b", after: "a"), to: &planner) == (.log, ["b", "c", "d"]))
        #expect(planner.lastSequence == 10)
        #expect(planner.chainLastId == "d")
        #expect(planner.waiting.isEmpty)
    }

    @Test func aResentWaitingItemIsADuplicate() {
        var planner = ChainPlanner(lastSequence: 1, chainLastId: "a", waiting: [])
        #expect(self.apply(self.item("c", after: "b"), to: &planner).0 == .wait)
        #expect(self.apply(self.item("c", after: "b"), to: &planner) == (.alreadyWaiting, []))
        #expect(planner.waiting.count == 1)
    }

    @Test func itemsWithoutIdsNoSeqItemsAndSecondBranchesDoNotWait() {
        var planner = ChainPlanner(lastSequence: 0, chainLastId: "a", waiting: [])
        // No id: logged at once, and the chain position is cleared (nothing can name it).
        #expect(self.apply(self.item(nil, after: "x"), to: &planner) == (.log, [nil]))
        #expect(planner.chainLastId == nil)
        _ = self.apply(self.item("p"), to: &planner)
        // no-seq: logged at once, the position stays where it was.
        #expect(self.apply(self.item("n", after: "x", noSeq: true), to: &planner) == (.log, ["n"]))
        #expect(planner.chainLastId == "p")
        // A second item naming the same missing prev-id is a branch: it does not wait behind the first.
        #expect(self.apply(self.item("q1", after: "m"), to: &planner).0 == .wait)
        #expect(self.apply(self.item("q2", after: "m"), to: &planner) == (.log, ["q2"]))
        #expect(planner.chainLastId == "q2")
    }

    @Test func aFullBufferLetsTheNextItemIn() {
        var planner = ChainPlanner(lastSequence: 0, chainLastId: "a", waiting: [])
        for index in 0..<ChainPlanner.maxWaiting {
            #expect(self.apply(self.item("w\(index)", after: "missing\(index)"), to: &planner).0 == .wait)
        }
        #expect(self.apply(self.item("over", after: "missing-x"), to: &planner) == (.log, ["over"]))
        #expect(planner.waiting.count == ChainPlanner.maxWaiting)
    }

    @Test func expiredItemsLeaveOldestFirstAndOnlyOnceTheirWaitIsOver() {
        var planner = ChainPlanner(lastSequence: 3, chainLastId: "a", waiting: [])
        _ = self.apply(self.item("c", after: "b"), to: &planner, at: 100)
        _ = self.apply(self.item("e", after: "d"), to: &planner, at: 200)
        #expect(planner.nextExpired(receivedThrough: 99) == nil)
        let first = planner.nextExpired(receivedThrough: 150)
        #expect(first?.item.id == "c")
        #expect(planner.nextExpired(receivedThrough: 150) == nil)
        if let first {
            #expect(planner.enter(first.item) == 4)
        }
        #expect(planner.chainLastId == "c")
        #expect(planner.nextSuccessor() == nil)
        #expect(planner.nextExpired(receivedThrough: 200)?.item.id == "e")
        #expect(planner.waiting.isEmpty)
    }
}

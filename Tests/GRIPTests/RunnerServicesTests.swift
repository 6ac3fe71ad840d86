import Runner
import Testing

/// `[runner] services`: P-8's own names run, Pushpin's components P-8 does not need are reported once, anything
/// else is reported as unknown; proxy and handler always run together.
@Suite struct RunnerServicesTests {
    @Test func unsetOrBothOwnNamesAreSilent() {
        #expect(RunnerServices.report([]).isEmpty)
        #expect(RunnerServices.report(["proxy", "handler"]).isEmpty)
        #expect(RunnerServices.report(["pushpin-proxy", "pushpin-handler"]).isEmpty)
    }

    @Test func pushpinsDefaultListReportsItsComponentsOnceInOneLine() {
        let warnings = RunnerServices.report(["condure", "zurl", "pushpin-proxy", "pushpin-handler"])
        #expect(
            warnings == [
                "[runner] services: Pushpin's condure (P-8 accepts client connections itself), zurl (P-8 connects "
                    + "to backends itself) ignored; P-8 runs proxy and handler in one server process"
            ]
        )
    }

    @Test func anUnknownNameIsReportedAndOneOwnNameAloneStillRunsBoth() {
        #expect(
            RunnerServices.report(["proxy", "cache"]) == [
                #"[runner] services: unknown service "cache" ignored (P-8 runs proxy and handler)"#,
                "[runner] services: proxy and handler cannot run apart; running both",
            ]
        )
        #expect(
            RunnerServices.report(["mongrel2", "m2adapter"]) == [
                "[runner] services: Pushpin's mongrel2 (P-8 accepts client connections itself), m2adapter (P-8 "
                    + "accepts client connections itself) ignored; P-8 runs proxy and handler in one server process",
                "[runner] services: proxy and handler cannot run apart; running both",
            ]
        )
    }
}

import GRIP
import Testing

@Suite struct ContentFilterTests {
    private static func apply(
        _ filters: [String],
        _ content: String,
        meta: [String: String] = [:],
        ids: [String: String?] = [:],
        on target: ContentFilters.Target = .message
    ) throws(ContentFilterError) -> String {
        let context = ContentFilterContext(subscriptionMeta: meta, channelIDs: ids)
        let out = try ContentFilters.apply(filters, to: Array(content.utf8), on: target, context: context)
        return String(decoding: out, as: UTF8.self)
    }

    private static func failure(
        _ filters: [String],
        _ content: String,
        meta: [String: String] = [:],
        ids: [String: String?] = [:]
    ) -> String? {
        do {
            _ = try Self.apply(filters, content, meta: meta, ids: ids)
            return nil
        } catch {
            return error.message
        }
    }

    // MARK: - var-subst

    @Test func varSubstSpecExample() throws {
        // grip-spec §11 seed 28.
        #expect(try Self.apply(["var-subst"], "hello %(name)s!\n", meta: ["name": "Bob Smith"]) == "hello Bob Smith!\n")
    }

    @Test func varSubstEscapes() throws {
        #expect(try Self.apply(["var-subst"], "100%% of %(a\\)b)s", meta: ["a)b": "x"]) == "100% of x")
        #expect(try Self.apply(["var-subst"], "no directives") == "no directives")
    }

    @Test func varSubstErrors() {
        #expect(Self.failure(["var-subst"], "%(nope)s") == "No such variable 'nope' at position 7")
        #expect(Self.failure(["var-subst"], "%s") == "Directive 's' requires argument at position 1")
        #expect(Self.failure(["var-subst"], "%(a)x", meta: ["a": "1"]) == "Unknown directive 'x' at position 4")
        #expect(Self.failure(["var-subst"], "50%") == "Expected directive after '%' at position 2")
        #expect(Self.failure(["var-subst"], "%(") == "Expected character after '(' at position 1")
        #expect(Self.failure(["var-subst"], "%(abc") == "Unterminated field starting at position 1")
        #expect(Self.failure(["var-subst"], "%(abc)") == "Expected directive after ')' at position 5")
        #expect(Self.failure(["var-subst"], "%(ab\\") == "Expected character after '\\' at position 4")
        #expect(Self.failure(["var-subst"], "%-") == "Unknown directive '-' at position 1")
    }

    // MARK: - build-id

    @Test func buildIDWithChannelIDs() throws {
        // What django-eventstream sets up: a composite id from every channel's current id (grip-spec §6.2).
        let meta = ["id_format": "events-a:%(events-a)s,events-b:%(events-b)s"]
        let ids: [String: String?] = ["events-a": "7", "events-b": "2"]
        #expect(
            try Self.apply(["build-id"], "id: %I\ndata: x\n\n", meta: meta, ids: ids)
                == "id: events-a:7,events-b:2\ndata: x\n\n"
        )
    }

    @Test func buildIDExplicitAndHex() throws {
        let meta = ["id_format": "%(c)s", "id_encoding": "hex"]
        #expect(try Self.apply(["build-id"], "%I %(ab)I", meta: meta, ids: ["c": "1:2"]) == "313a32 6162")
        #expect(try Self.apply(["build-id"], "%(given)I", meta: ["id_format": "x"], ids: [:]) == "given")
    }

    @Test func buildIDActsOnResponsesVarSubstDoesNot() throws {
        let meta = ["id_format": "%(c)s", "name": "n"]
        // var-subst would fail on `%I`: only build-id runs on a response.
        #expect(
            try Self.apply(["var-subst", "build-id"], "%I %%", meta: meta, ids: ["c": "5"], on: .response) == "5 %"
        )
    }

    @Test func buildIDErrors() {
        #expect(Self.failure(["build-id"], "%I") == "no sub meta 'id_format'")
        #expect(
            Self.failure(["build-id"], "%I", meta: ["id_format": "x"])
                == "No ID specified and no default ID in context at position 1"
        )
        #expect(
            Self.failure(["build-id"], "%I", meta: ["id_format": "%(c)s"], ids: ["c": nil])
                == "failed to render ID: No such variable 'c' at position 4"
        )
        #expect(
            Self.failure(["build-id"], "%I", meta: ["id_format": "x", "id_encoding": "b64"], ids: ["c": "1"])
                == "unsupported encoding: b64"
        )
        #expect(
            Self.failure(["build-id"], "%s", meta: ["id_format": "x"], ids: ["c": "1"])
                == "Unknown directive 's' at position 1"
        )
    }

    @Test func filtersApplyInOrderAndDeliveryFiltersLeaveContent() throws {
        let meta = ["id_format": "%(c)s", "v": "%I"]
        // var-subst first puts a `%I` in the content, which build-id then renders.
        #expect(try Self.apply(["skip-self", "var-subst", "build-id"], "%(v)s", meta: meta, ids: ["c": "9"]) == "9")
        #expect(try Self.apply(["skip-self", "require-sub"], "%I %%") == "%I %%")
    }

    // MARK: - content-filters check

    @Test func publishedContentFiltersMustMatch() throws {
        try ContentFilters.checkMatch(subscription: ["skip-users", "build-id"], published: ["build-id"])
        try ContentFilters.checkMatch(subscription: ["build-id"], published: nil)
        try ContentFilters.checkMatch(subscription: ["skip-self"], published: [])
        #expect(throws: ContentFilterError("content filter mismatch: subscription= message=build-id")) {
            try ContentFilters.checkMatch(subscription: ["skip-self"], published: ["build-id"])
        }
        #expect(
            throws: ContentFilterError(
                "content filter mismatch: subscription=build-id,var-subst message=var-subst,build-id"
            )
        ) {
            try ContentFilters.checkMatch(
                subscription: ["build-id", "var-subst"],
                published: ["var-subst", "build-id"]
            )
        }
    }
}

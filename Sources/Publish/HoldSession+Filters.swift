import GRIP

// The filters of grip-spec §3.7 and the response a long-poll is released with.
extension HoldSession {
    /// A published format's `content-filters` must be the subscription's content filters: else the session ends.
    func checkContentFilters(_ published: [String]?, _ delivery: Delivery, _ state: inout State) -> Action? {
        do {
            try ContentFilters.checkMatch(subscription: self.filters(of: delivery.channel), published: published)
            return nil
        } catch {
            state.phase = .ended
            return .fail(error.message)
        }
    }

    func filters(of channel: String) -> [String] {
        self.request.channels.first { $0.name == channel }?.filters ?? []
    }

    /// Published content through the channel's content filters (grip-spec §3.7).
    func filtered(_ content: [UInt8], delivery: Delivery, _ state: State) throws(ContentFilterError) -> [UInt8] {
        let filters = self.filters(of: delivery.channel)
        guard filters.contains(where: { ContentFilters.acts($0, on: .message) }) else { return content }
        return try ContentFilters.apply(filters, to: content, on: .message, context: self.filterContext(state))
    }

    /// What content filters see: the subscription meta and each channel's current id (by the backend's name).
    func filterContext(_ state: State) -> ContentFilterContext {
        var ids: [String: String?] = [:]
        for channel in self.request.channels {
            ids[channel.backendName] = .some(state.channels[channel.name]?.currentID)
        }
        return ContentFilterContext(subscriptionMeta: self.request.meta, channelIDs: ids)
    }

    /// The response a published `http-response` releases a long-poll with (grip-spec §3.4 steps 4-5), its body
    /// through the channel's content filters.
    func response(
        for format: HTTPResponseFormat,
        delivery: Delivery,
        _ state: State
    ) throws(ContentFilterError) -> Instruct.Response {
        let original = self.request.response
        let headers = format.mergedHeaders(over: original.headers).filter { !$0.hasName("Content-Length") }
        switch format.body {
        case .bytes(let body):
            return Instruct.Response(
                code: format.effectiveCode,
                reason: format.effectiveReason,
                headers: headers,
                body: try self.filtered(body, delivery: delivery, state)
            )
        case .patch(let operations):
            let patched: [UInt8]
            do {
                patched = try JSONPatch.apply(operations, toBody: original.body)
            } catch {
                return Instruct.Response(
                    code: 502,
                    reason: "Bad Gateway",
                    headers: [HeaderField(name: "Content-Type", value: "text/plain")],
                    body: Array("Failed to apply body-patch: \(error)\n".utf8)
                )
            }
            return Instruct.Response(
                code: format.effectiveCode,
                reason: format.effectiveReason,
                headers: headers,
                body: try self.filtered(patched, delivery: delivery, state)
            )
        }
    }

    /// The delivery filters of grip-spec §3.7 (`skip-self`, `skip-users`, `require-sub`).
    static func passesFilters(_ delivery: Delivery, channel: String, request: HoldRequest) -> Bool {
        guard let filters = request.channels.first(where: { $0.name == channel })?.filters, !filters.isEmpty else {
            return true
        }
        return DeliveryFilters.passes(delivery, filters: filters, user: request.meta["user"]) { required in
            request.channels.contains { $0.name == required || $0.backendName == required }
        }
    }
}

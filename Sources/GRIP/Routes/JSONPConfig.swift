/// A route's JSON-P options (`jsonp_mode`, `jsonp_cb`, `jsonp_body`, `jsonp_defcb`, `jsonp_defmethod`), used when
/// the route has `aco` or `[proxy] auto_cross_origin` is on (grip-spec §2.9).
package struct JSONPConfig: Sendable, Hashable {
    /// How the response is wrapped.
    package enum Mode: String, Sendable, Hashable {
        /// `fn(<body>)`.
        case basic
        /// `fn({"code": ..., "reason": ..., "headers": {...}, "body": "..."})` (the default).
        case extended
    }

    package var mode: Mode
    /// The query parameter naming the callback (`jsonp_cb`, default `callback`).
    package var callbackParameter: String
    /// A query parameter carrying the request body as JSON (`jsonp_body`); with it, `_body` is not read.
    package var bodyParameter: String?
    /// The callback used when only ``bodyParameter`` is present (`jsonp_defcb`).
    package var defaultCallback: String?
    /// The method sent to the backend when the query has no `_method` (`jsonp_defmethod`; default `GET` in
    /// extended mode, `POST` in basic mode).
    package var defaultMethod: String

    package init(
        mode: Mode = .extended,
        callbackParameter: String = "callback",
        bodyParameter: String? = nil,
        defaultCallback: String? = nil,
        defaultMethod: String? = nil
    ) {
        self.mode = mode
        self.callbackParameter = callbackParameter
        self.bodyParameter = bodyParameter
        self.defaultCallback = defaultCallback
        self.defaultMethod = defaultMethod ?? (mode == .basic ? "POST" : "GET")
    }
}

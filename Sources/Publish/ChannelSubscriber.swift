/// What the hub fans a channel's items out to: a held request (``HoldSession``) or a WebSocket
/// (``WebSocketSession``). Calls for one channel arrive in the channel's delivery order, one at a time.
protocol ChannelSubscriber: AnyObject, Sendable {
    /// An item committed on one of the subscriber's channels.
    func deliver(_ delivery: Delivery)
}

import Foundation
import Testing

@testable import Store

/// The in-memory tails, event by event: contiguous items answered from memory, anything else left to the database.
@Suite("Channel tails")
struct ChannelTailsTests {
    private static func item(_ sequence: Int64, channel: String = "c") -> StoredItem {
        StoredItem(
            channel: channel,
            sequence: sequence,
            id: "i\(sequence)",
            prevId: nil,
            formats: Data(),
            size: 1,
            publishedAt: Date(timeIntervalSince1970: 0)
        )
    }

    @Test("a read inside the tail is answered from it, one outside it is not")
    func readsInsideTheTail() {
        let tails = ChannelTails(itemsPerChannel: 10, maxChannels: 10)
        tails.append([Self.item(5), Self.item(6), Self.item(7)])
        #expect(tails.read(channel: "c", after: .sequence(5), limit: 10)?.items.map(\.sequence) == [6, 7])
        #expect(tails.read(channel: "c", after: .id("i4"), limit: 10) == nil)
        #expect(tails.read(channel: "c", after: .sequence(4), limit: 10)?.items.map(\.sequence) == [5, 6, 7])
        #expect(tails.read(channel: "c", after: .sequence(3), limit: 10) == nil)
        #expect(tails.read(channel: "c", after: .sequence(7), limit: 10)?.items.isEmpty == true)
    }

    @Test("an item after a gap starts the tail again: reads before it go to the database, none traps")
    func gapStartsTheTailAgain() {
        let tails = ChannelTails(itemsPerChannel: 10, maxChannels: 10)
        tails.append([Self.item(10)])
        tails.append([Self.item(12)])
        #expect(tails.read(channel: "c", after: .sequence(12), limit: 10)?.items.isEmpty == true)
        #expect(tails.read(channel: "c", after: .id("i12"), limit: 10)?.items.isEmpty == true)
        #expect(tails.read(channel: "c", after: .sequence(11), limit: 10)?.items.map(\.sequence) == [12])
        #expect(tails.read(channel: "c", after: .sequence(10), limit: 10) == nil)
    }
}

/// The durable channel log and held-request records (filled in by the Store issue).
package enum StoreModule {}

/// The handler side: publish intake, subscriptions and fan-out (filled in by the GRIP core issue).
package enum PublishModule {}

/// The connection side (filled in by the foundation issue).
package enum ProxyModule {}

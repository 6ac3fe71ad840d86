/// The GRIP wire formats as values (filled in by the foundation issue).
package enum GRIPModule {}

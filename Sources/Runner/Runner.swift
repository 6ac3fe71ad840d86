/// The composition root (filled in by the foundation issue).
package enum RunnerModule {}

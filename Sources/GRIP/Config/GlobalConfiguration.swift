/// The `[global]` section.
package struct GlobalConfiguration: Sendable, Hashable {
    /// Absolute run directory (`rundir`, default `run` beside the config file; `[runner] rundir` is the
    /// deprecated fallback). Substituted for `{rundir}` in other values.
    package var rundir: String
    /// Absolute library directory (`libdir`, deprecated in Pushpin; default: the config file's directory).
    /// Substituted for `{libdir}`, normally only in `include`.
    package var libdir: String
    /// Prefix of ipc socket names (`ipc_prefix`, default `pushpin-`), substituted for `{ipc_prefix}`.
    package var ipcPrefix: String
    /// Added to every `tcp://host:PORT` spec and to `push_in_http_port` (`port_offset`, default 0).
    package var portOffset: Int

    /// Creates the section's values.
    package init(rundir: String, libdir: String, ipcPrefix: String = "pushpin-", portOffset: Int = 0) {
        self.rundir = rundir
        self.libdir = libdir
        self.ipcPrefix = ipcPrefix
        self.portOffset = portOffset
    }
}

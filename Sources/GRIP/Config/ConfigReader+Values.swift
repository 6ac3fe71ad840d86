// Reading one value: substitutions, paths, lists, numbers, booleans, signing keys, ZeroMQ specs, and errors that
// name the file and line a value came from.
extension ConfigReader {
    func raw(_ section: String, _ key: String) -> Located? {
        self.values[SectionKey(section: section, key: key)]
    }

    /// The value with templates substituted; nil when absent or empty.
    func string(_ section: String, _ key: String) -> String? {
        guard let located = self.raw(section, key), !located.value.isEmpty else {
            return nil
        }
        return self.substitute(located.value)
    }

    func substitute(_ value: String) -> String {
        guard value.contains("{") else {
            return value
        }
        return
            value
            .replacingAll("{libdir}", with: self.libdir)
            .replacingAll("{rundir}", with: self.rundir)
            .replacingAll("{ipc_prefix}", with: self.ipcPrefix)
    }

    func resolvedPath(_ value: String?, default defaultValue: String) -> String {
        let path = (value?.isEmpty ?? true) ? self.substitute(defaultValue) : value!
        return ConfigPath.resolve(path, against: self.configDirectory)
    }

    func list(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingINIWhitespace() }.filter { !$0.isEmpty }
    }

    func int(_ section: String, _ key: String, minimum: Int) throws(ConfigError) -> Int? {
        guard let located = self.raw(section, key), !located.value.isEmpty else {
            return nil
        }
        guard let number = Int(located.value) else {
            throw self.failure(located, section, key, "\"\(located.value)\" is not an integer")
        }
        guard number >= minimum else {
            throw self.failure(located, section, key, "\(number) is less than \(minimum)")
        }
        return number
    }

    /// A limit where Pushpin uses a negative number for "unlimited": negative or empty is nil, 0 is refused.
    func optionalLimit(_ section: String, _ key: String) throws(ConfigError) -> Int? {
        guard let number = try self.int(section, key, minimum: Int.min), number >= 0 else {
            return nil
        }
        if number == 0 {
            throw self.failure(
                self.raw(section, key)!,
                section,
                key,
                "must be at least 1 (leave it empty for unlimited)"
            )
        }
        return number
    }

    func bool(_ section: String, _ key: String) throws(ConfigError) -> Bool? {
        guard let located = self.raw(section, key), !located.value.isEmpty else {
            return nil
        }
        switch located.value.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default:
            throw self.failure(located, section, key, "\"\(located.value)\" is not a boolean (true or false)")
        }
    }

    func signingKey(_ section: String, _ key: String) throws(ConfigError) -> SigningKey? {
        guard let located = self.raw(section, key) else {
            return nil
        }
        do throws(ConfigError) {
            if let path = self.keyFilePath(section, key) {
                guard let contents = self.keyFiles[path] ?? nil else {
                    throw self.failure(located, section, key, "cannot read the key file \(path)")
                }
                return try SigningKey.parse(fileContents: contents)
            }
            return try SigningKey.parse(located.value)
        } catch {
            throw self.located(error, located, section, key)
        }
    }

    /// For a `file:<path>` key (Pushpin 1.38+), the file's absolute path (relative paths are relative to the
    /// config file's directory).
    func keyFilePath(_ section: String, _ key: String) -> String? {
        guard let value = self.raw(section, key)?.value, value.hasPrefix("file:") else { return nil }
        return ConfigPath.resolve(
            self.substitute(String(value.dropFirst("file:".count))),
            against: self.configDirectory
        )
    }

    func forwardedForRule(_ section: String, _ key: String) throws(ConfigError) -> XForwardedForRule {
        guard let located = self.raw(section, key) else {
            return XForwardedForRule()
        }
        do {
            return try XForwardedForRule(parsing: located.value)
        } catch {
            throw self.located(error, located, section, key)
        }
    }

    /// A ZeroMQ spec with templates substituted and `port_offset` added to a `tcp://` port; "" when empty.
    func spec(_ section: String, _ key: String, default defaultValue: String) throws(ConfigError) -> String {
        guard let located = self.raw(section, key) else {
            return try self.offsetSpec(self.substitute(defaultValue), nil, section, key)
        }
        return try self.offsetSpec(self.substitute(located.value), located, section, key)
    }

    func offsetSpec(
        _ spec: String,
        _ located: Located?,
        _ section: String,
        _ key: String
    ) throws(ConfigError) -> String {
        guard spec.hasPrefix("tcp://"), self.portOffset != 0 else {
            return spec
        }
        guard let colon = spec.lastIndex(of: ":"), let port = Int(spec[spec.index(after: colon)...]),
            (0...65535).contains(port + self.portOffset)
        else {
            var error = ConfigError(.invalidValue, "\"\(spec)\" is not tcp://host:PORT with room for port_offset")
            error.section = section
            error.key = key
            error.line = located?.line
            error.file = located?.file
            throw error
        }
        return "\(spec[...colon])\(port + self.portOffset)"
    }

    func failure(_ located: Located, _ section: String, _ key: String, _ message: String) -> ConfigError {
        ConfigError(.invalidValue, message, section: section, key: key, line: located.line, file: located.file)
    }

    func located(_ error: ConfigError, _ located: Located, _ section: String, _ key: String) -> ConfigError {
        var error = error
        error.section = section
        error.key = key
        error.line = located.line
        error.file = located.file
        return error
    }
}

extension String {
    /// The string with every occurrence of `target` replaced (no Foundation needed).
    func replacingAll(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

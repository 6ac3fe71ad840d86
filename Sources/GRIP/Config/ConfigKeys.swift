/// The config keys P-8 knows, per section: the ones it acts on and the Pushpin ones it accepts but ignores.
enum ConfigKeys {
    /// Keys P-8 reads.
    static let supported: [String: Set<String>] = [
        "global": ["include", "rundir", "libdir", "ipc_prefix", "port_offset"],
        "runner": [
            "http_port", "logdir", "log_level", "client_buffer_size", "client_maxconn", "services", "rundir",
            "https_ports",
        ],
        "proxy": [
            "routesfile", "debug", "auto_cross_origin", "accept_x_forwarded_protocol", "set_x_forwarded_protocol",
            "x_forwarded_for", "x_forwarded_for_trusted", "accept_pushpin_route", "sig_iss", "sig_key",
            "upstream_key", "max_open_requests", "backend_connect_timeout", "backend_response_timeout",
            "websocket_max_frame_size", "websocket_max_message_size", "prometheus_port", "prometheus_prefix",
        ],
        "handler": [
            "push_in_spec", "push_in_sub_specs", "push_in_sub_spec", "push_in_sub_connect", "push_in_http_addr",
            "push_in_http_port", "stats_spec", "command_spec", "message_rate", "message_hwm", "message_wait",
            "id_cache_ttl", "subscription_linger", "connection_subscription_max", "stats_format",
            "stats_report_interval", "prometheus_port", "push_in_http_max_body_size", "push_in_http_key",
            "update_on_first_subscription",
            "prometheus_prefix",
        ],
        "store": [
            "database_file", "synchronous", "max_items", "max_age", "max_bytes", "max_total_bytes",
            "retention_overrides", "backend", "postgresql_url",
        ],
    ]

    /// Pushpin keys P-8 accepts without acting on them (reported once as "accepted but not supported").
    static let acceptedUnsupported: [String: Set<String>] = [
        "global": ["stats_connection_ttl", "stats_connection_send"],
        "runner": [
            "local_ports", "condure_bin", "mongrel2_bin", "m2sh_bin", "zurl_bin",
            "pushpin_proxy_bin", "pushpin_handler_bin", "allow_compression",
        ],
        "proxy": [
            "orig_headers_need_mark", "cdn_loop", "log_from", "log_user_agent", "sockjs_url", "updates_check",
            "organization_name", "stats_report_interval", "ipc_file_mode",
            "workers", "stats_connection_ttl", "stats_connection_send", "stats_spec", "command_spec",
            "allow_compression",
        ],
        "handler": [
            "push_in_http_max_headers_size", "message_block_size", "stats_subscription_ttl",
            "share_all", "state_spec", "ipc_file_mode", "stats_connection_ttl", "stats_connection_send",
        ],
    ]

    /// Prefixes of Pushpin's internal inter-process wiring keys (`zurl_out_specs`, `handler_inspect_spec`,
    /// `proxy_accept_spec`...), accepted but not supported in `[proxy]` and `[handler]`.
    static let internalSpecPrefixes = ["condure_", "m2a_", "zurl_", "handler_", "proxy_", "intreq_", "connmgr_"]

    /// How P-8 treats `key` in `section`.
    static func classify(section: String, key: String) -> Classification {
        if Self.acceptedUnsupported[section]?.contains(key) == true {
            return .acceptedUnsupported
        }
        if Self.supported[section]?.contains(key) == true {
            return .supported
        }
        if section == "proxy" || section == "handler",
            key.hasSuffix("_spec") || key.hasSuffix("_specs"),
            Self.internalSpecPrefixes.contains(where: { key.hasPrefix($0) })
        {
            return .acceptedUnsupported
        }
        return .unknown
    }

    enum Classification {
        case supported
        case acceptedUnsupported
        case unknown
    }
}

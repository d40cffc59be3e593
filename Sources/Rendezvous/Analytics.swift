import Cluster
import Foundation
import RendezvousCore
import Ring
import Transport
import WireProtocol

/// One snapshot of every counter, taken on the service thread; rendered as JSON and as Prometheus text.
struct StatsSnapshot {
    var peersOnline: Int
    var connectionsOpen: Int
    var membership: MembershipCounters
    var transport: TransportCounters
    var uptimeSeconds: Double
    var arcRatioMaxMin: Double
    var arcRatioMaxMean: Double
    var fingerRows: [Int]
    var eventSubscribers: Int
    /// IDs leased to absent holders.
    var leasesHeld = 0
    /// Peers whose session is on this server (all of them on a single server).
    var peersHere = 0
    /// Cluster mode: this instance and what it knows of the others (nil on a single server).
    var cluster: ClusterFigures?

    var json: JSONValue {
        var errors: [String: JSONValue] = [:]
        for code in ErrorCode.allCases { errors[code.rawValue] = .number(Double(membership.errors[code] ?? 0)) }
        func n(_ v: Int) -> JSONValue { .number(Double(v)) }
        return .object([
            "peersOnline": n(peersOnline),
            "connectionsOpen": n(connectionsOpen),
            "joins": n(membership.joins),
            "leaves": n(membership.leaves),
            "leavesByReason": .object(Dictionary(uniqueKeysWithValues: LeaveReason.allCases.map {
                ($0.rawValue, n(membership.leavesByReason[$0] ?? 0)) })),
            "reRegistrations": n(membership.reRegistrations),
            "badSignatures": n(membership.badSignatures),
            "replacements": n(membership.replacements),
            "leasesHeld": n(leasesHeld),
            "leasesExpired": n(membership.leasesExpired),
            "leasesClaimed": n(membership.leasesClaimed),
            "idExpiredAnswers": n(membership.errors[.idExpired] ?? 0),
            "evictions": n(membership.evictions),
            "signalsRelayed": n(membership.signalsRelayed),
            "linkRelayFrames": n(membership.linkRelayFrames),
            "linkRelayBytes": n(membership.linkRelayBytes),
            "linkRelayDropped": n(membership.linkRelayDropped),
            "reports": n(membership.reports),
            "messagesIn": n(transport.messagesIn),
            "messagesOut": n(transport.messagesOut),
            "bytesIn": n(transport.bytesIn),
            "bytesOut": n(transport.bytesOut),
            "httpRequests": n(transport.httpRequests),
            "slowConsumerDisconnects": n(transport.slowConsumerDisconnects),
            "abusiveDisconnects": n(membership.abusiveDisconnects),
            "abusiveDisconnectsByRule": .object(Dictionary(uniqueKeysWithValues: AbuseRule.allCases.map {
                ($0.rawValue, n(membership.abusiveDisconnectsByRule[$0] ?? 0)) })),
            "controlFramesIn": n(membership.controlFrames),
            "rateLimitedMessages": n(membership.rateLimitedMessages),
            "socketsOpen": n(transport.connectionsOpen),
            "originRejections": n(transport.originRejections),
            "connectionLimitRejections": n(transport.connectionLimitRejections),
            "httpBadRequests": n(transport.badRequests),
            "httpHeadersTooLarge": n(transport.headersTooLarge),
            "eventSubscribers": n(eventSubscribers),
            "errors": .object(errors),
            "uptimeSeconds": .number((uptimeSeconds * 1000).rounded() / 1000),
            "arcRatioMaxMin": .number(arcRatioMaxMin),
            "arcRatioMaxMean": .number(arcRatioMaxMean),
            "fingerRows": .array(fingerRows.map { n($0) }),
            "peersHere": n(peersHere),
            "refusedUnavailable": n(membership.refusedUnavailable),
            "cluster": cluster?.json ?? .null,
        ])
    }

    /// Prometheus text exposition format 0.0.4.
    var prometheus: String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: Double, labels: String = "") {
            out += "# HELP browsercloud_\(name) \(help)\n# TYPE browsercloud_\(name) \(type)\n"
            out += "browsercloud_\(name)\(labels) \(format(value))\n"
        }
        metric("peers_online", "gauge", "Peers registered in the ring.", Double(peersOnline))
        metric("connections_open", "gauge", "Open signalling WebSocket connections.", Double(connectionsOpen))
        metric("joins_total", "counter", "Peers that joined the ring.", Double(membership.joins))
        metric("leaves_total", "counter", "Peers that left the ring (any reason).", Double(membership.leaves))
        out += "# HELP browsercloud_leaves_by_reason_total Peers that left the ring, by reason.\n# TYPE browsercloud_leaves_by_reason_total counter\n"
        for reason in LeaveReason.allCases {
            out += "browsercloud_leaves_by_reason_total{reason=\"\(reason.rawValue)\"} \(membership.leavesByReason[reason] ?? 0)\n"
        }
        metric("reregistrations_total", "counter", "Registrations that got a held ID back (a returning key).", Double(membership.reRegistrations))
        metric("bad_signatures_total", "counter", "Registrations answered bad-signature (the signature did not verify).",
               Double(membership.badSignatures))
        metric("replacements_total", "counter", "Sessions replaced by a new session for the same ID.", Double(membership.replacements))
        metric("leases_held", "gauge", "IDs leased to holders that went away (docs/protocol.md, \"Epochs, leases and the state file\").", Double(leasesHeld))
        metric("leases_expired_total", "counter", "Leases that ended unclaimed (their IDs became free).", Double(membership.leasesExpired))
        metric("leases_claimed_total", "counter", "Leased IDs taken back by their holder.", Double(membership.leasesClaimed))
        metric("id_expired_total", "counter", "Registrations answered id-expired (a valid signature by a key that does not hold the ID).",
               Double(membership.errors[.idExpired] ?? 0))
        metric("evictions_total", "counter", "Peers evicted by the operator.", Double(membership.evictions))
        metric("signals_relayed_total", "counter", "WebRTC signals relayed between peers.", Double(membership.signalsRelayed))
        metric("link_relay_frames_total", "counter", "Link frames relayed between peers that cannot reach each other.", Double(membership.linkRelayFrames))
        metric("link_relay_bytes_total", "counter", "Bytes of relayed link frames.", Double(membership.linkRelayBytes))
        metric("link_relay_dropped_total", "counter", "Link frames dropped by the relay rate limit.", Double(membership.linkRelayDropped))
        metric("reports_total", "counter", "Peer stats reports received.", Double(membership.reports))
        metric("messages_in_total", "counter", "WebSocket messages received.", Double(transport.messagesIn))
        metric("messages_out_total", "counter", "WebSocket messages sent.", Double(transport.messagesOut))
        metric("bytes_in_total", "counter", "WebSocket payload bytes received.", Double(transport.bytesIn))
        metric("bytes_out_total", "counter", "Payload bytes sent (WebSocket and HTTP bodies).", Double(transport.bytesOut))
        metric("http_requests_total", "counter", "HTTP requests served.", Double(transport.httpRequests))
        metric("slow_consumer_disconnects_total", "counter", "Connections closed because their send queue overflowed.",
               Double(transport.slowConsumerDisconnects))
        metric("abusive_disconnects_total", "counter", "Connections closed for sustained rate-limit violations.",
               Double(membership.abusiveDisconnects))
        out += "# HELP browsercloud_abusive_disconnects_by_rule_total Connections closed as abusive, by the rule that closed them.\n"
        out += "# TYPE browsercloud_abusive_disconnects_by_rule_total counter\n"
        for rule in AbuseRule.allCases {
            out += "browsercloud_abusive_disconnects_by_rule_total{rule=\"\(rule.rawValue)\"} \(membership.abusiveDisconnectsByRule[rule] ?? 0)\n"
        }
        metric("control_frames_total", "counter", "Control frames (pings) received from peers, as estimated from their bytes.",
               Double(membership.controlFrames))
        metric("rate_limited_messages_total", "counter", "Messages dropped by the per-connection rate limit.",
               Double(membership.rateLimitedMessages))
        metric("event_subscribers", "gauge", "Open /api/events streams.", Double(eventSubscribers))
        metric("sockets_open", "gauge", "Accepted TCP connections of every kind (HTTP, WebSocket, event streams).",
               Double(transport.connectionsOpen))
        metric("origin_rejections_total", "counter", "WebSocket upgrades refused by the Origin allow-list.",
               Double(transport.originRejections))
        metric("connection_limit_rejections_total", "counter", "WebSocket upgrades refused by the connection limit.",
               Double(transport.connectionLimitRejections))
        metric("http_bad_requests_total", "counter", "HTTP requests answered 400 because they could not be parsed (NUL in the request target).",
               Double(transport.badRequests))
        metric("http_headers_too_large_total", "counter", "HTTP requests answered 431 because their head exceeded --max-header-bytes.",
               Double(transport.headersTooLarge))
        out += "# HELP browsercloud_errors_total Protocol errors sent to peers, by code.\n# TYPE browsercloud_errors_total counter\n"
        for code in ErrorCode.allCases {
            out += "browsercloud_errors_total{code=\"\(code.rawValue)\"} \(membership.errors[code] ?? 0)\n"
        }
        metric("uptime_seconds", "gauge", "Seconds since the server started.", uptimeSeconds)
        metric("arc_ratio_max_min", "gauge", "Largest arc between consecutive peers over the smallest (0 when empty).", arcRatioMaxMin)
        metric("arc_ratio_max_mean", "gauge", "Largest arc between consecutive peers over the mean arc (0 when empty).", arcRatioMaxMean)
        metric("finger_rows", "gauge", "Finger rows currently pushed to peers.", Double(fingerRows.count))
        if let cluster {
            metric("refused_unavailable_total", "counter", "Registrations refused with `unavailable` while the cluster's log was unreachable.",
                   Double(membership.refusedUnavailable))
            out += cluster.prometheus
        }
        return out
    }

    private func format(_ v: Double) -> String {
        v.rounded() == v && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}

/// A cluster instance's view of its link and of the live instances (docs/cluster.md, "Analytics").
struct ClusterFigures {
    var name: String
    var instanceID: String
    var status: ClusterLink.Status

    /// The figures every live instance published with its last heartbeat, by incarnation.
    var instances: [(String, JSONValue)] { status.instances.sorted { $0.key < $1.key } }

    var json: JSONValue {
        var totals: [String: Double] = [:]
        for (_, figures) in instances {
            guard case .object(let o) = figures else { continue }
            for (key, value) in o { if case .number(let x) = value, key != "uptimeSeconds" { totals[key, default: 0] += x } }
        }
        return .object([
            "instance": .string(name), "instanceId": .string(instanceID), "logAvailable": .bool(status.available),
            "problem": status.problem.map(JSONValue.string) ?? .null, "appliedEntries": .number(Double(status.appliedEntries)),
            "lastEntry": .string(status.lastEntry), "queued": .number(Double(status.queued)), "dropped": .number(Double(status.dropped)),
            "instances": .array(instances.map { id, figures in
                guard case .object(var o) = figures else { return figures }
                o["instanceId"] = .string(id)
                return .object(o)
            }),
            "totals": .object(totals.mapValues(JSONValue.number)),
        ])
    }

    /// Metrics with an `instance` label: this instance's link, and every live instance's figures (so a
    /// sum over the label gives the cluster's totals), labelled with the incarnation (`name/suffix`: a
    /// restarted instance's old heartbeat may still be there for up to the instance timeout).
    var prometheus: String {
        func label(_ s: String) -> String { s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
        let me = "instance=\"\(label(name))\""
        var out = "# HELP browsercloud_cluster_log_available Whether this instance reaches the cluster's log (1) or not (0).\n"
        out += "# TYPE browsercloud_cluster_log_available gauge\nbrowsercloud_cluster_log_available{\(me)} \(status.available ? 1 : 0)\n"
        out += "# HELP browsercloud_cluster_entries_applied_total Log entries this instance applied.\n"
        out += "# TYPE browsercloud_cluster_entries_applied_total counter\nbrowsercloud_cluster_entries_applied_total{\(me)} \(status.appliedEntries)\n"
        out += "# HELP browsercloud_cluster_queued Proposals and forwarded messages waiting for Redis.\n"
        out += "# TYPE browsercloud_cluster_queued gauge\nbrowsercloud_cluster_queued{\(me)} \(status.queued)\n"
        out += "# HELP browsercloud_cluster_instances Live instances of the cluster (heartbeats seen).\n"
        out += "# TYPE browsercloud_cluster_instances gauge\nbrowsercloud_cluster_instances{\(me)} \(instances.count)\n"
        for (metric, key, help) in [("peers", "peersHere", "Peers whose session is on the instance."),
                                    ("connections_open", "connectionsOpen", "Open signalling connections of the instance."),
                                    ("forwards_sent_total", "forwardsSent", "Signals and link frames the instance forwarded to others."),
                                    ("forwards_delivered_total", "forwardsDelivered", "Forwarded messages the instance delivered."),
                                    ("forwards_dropped_total", "forwardsDropped", "Forwarded messages the instance dropped (target gone or changed).")] {
            out += "# HELP browsercloud_cluster_instance_\(metric) \(help) By instance, from the last heartbeats.\n"
            out += "# TYPE browsercloud_cluster_instance_\(metric) \(metric.hasSuffix("_total") ? "counter" : "gauge")\n"
            for (id, figures) in instances {
                guard case .number(let x)? = figures[key] else { continue }
                out += "browsercloud_cluster_instance_\(metric){instance=\"\(label(id))\"} \(Int(x))\n"
            }
        }
        return out
    }
}

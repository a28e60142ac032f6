//! `--roles`: what one `pulsyon serve` process does.

/// What one `pulsyon serve` process does (`--roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The ingest doors: validation, limits, admission.
    pub ingest: bool,
    /// The writer, the rollups and the partition keeper.
    pub writer: bool,
    /// The detector (one leader among the processes that have the role).
    pub detect: bool,
    /// Query, Incidents (Watch and the incident hub) and Admin.
    pub query: bool,
    /// The dashboard on the HTTP port (its pages, JSON API and event stream).
    pub web: bool,
    /// Notifications: deliveries planned from the outbox and sent.
    pub notify: bool,
}

impl Roles {
    /// Every role: the single-process default.
    pub const ALL: Roles = Roles {
        ingest: true,
        writer: true,
        detect: true,
        query: true,
        web: true,
        notify: true,
    };

    /// Each role's name and what it starts, for `pulsyon roles`.
    pub const TABLE: [(&'static str, &'static str); 6] = [
        (
            "ingest",
            "serves pulsyon.v1.Ingest and OTLP traces (gRPC Export, HTTP /v1/traces): validation, per-tenant limits, admission into the writer's queue (this process's, or the Redis buffer with --redis-url)",
        ),
        (
            "writer",
            "the batching writer (COPY into api_logs; drains the Redis buffer's shards it owns with --redis-url), the rollup task, the partition keeper",
        ),
        (
            "detect",
            "the detector (one leader at a time across processes, by advisory lock)",
        ),
        (
            "query",
            "serves pulsyon.v1.Query, pulsyon.v1.Incidents (with the incident hub for Watch) and pulsyon.v1.Admin",
        ),
        (
            "web",
            "the dashboard on the HTTP port: pages, JSON API, incident event stream (with the incident hub)",
        ),
        (
            "notify",
            "notifications: every incident update made into deliveries to the tenant's receivers (webhook, Slack, PagerDuty, email) and sent, any number of processes at once",
        ),
    ];

    /// The grouped names `--roles` takes, and what each stands for.
    pub const GROUPS: [(&'static str, &'static str); 3] = [
        ("write", "ingest,writer"),
        ("read", "detect,query,web,notify"),
        ("all", "ingest,writer,detect,query,web,notify"),
    ];

    /// A comma-separated list of role names, or `all`.
    pub fn parse(list: &str) -> Result<Roles, String> {
        let mut roles = Roles {
            ingest: false,
            writer: false,
            detect: false,
            query: false,
            web: false,
            notify: false,
        };
        for name in list.split(',').map(str::trim) {
            match name {
                "all" => roles = Roles::ALL,
                "ingest" => roles.ingest = true,
                "writer" => roles.writer = true,
                "detect" => roles.detect = true,
                "query" => roles.query = true,
                "web" => roles.web = true,
                "notify" => roles.notify = true,
                "write" => (roles.ingest, roles.writer) = (true, true),
                "read" => {
                    (roles.detect, roles.query, roles.web, roles.notify) = (true, true, true, true)
                }
                "" => return Err("empty role name".into()),
                other => {
                    return Err(format!(
                        "unknown role {other:?} (roles: all, ingest, writer, detect, query, web, notify; groups: write, read)"
                    ));
                }
            }
        }
        Ok(roles)
    }

    /// Whether this combination can run: without a buffer between
    /// processes (`buffer`: Redis is configured), what ingest admits only
    /// this process's writer can write.
    pub fn check(&self, buffer: bool) -> Result<(), String> {
        if self.ingest != self.writer && !buffer {
            return Err(format!(
                "invalid --roles: {} without {} needs a buffer between processes: give --redis-url (Redis Streams), or run ingest and writer together",
                if self.ingest { "ingest" } else { "writer" },
                if self.ingest { "writer" } else { "ingest" },
            ));
        }
        Ok(())
    }

    /// The role names, comma-separated.
    pub fn names(&self) -> String {
        let on = [
            self.ingest,
            self.writer,
            self.detect,
            self.query,
            self.web,
            self.notify,
        ];
        Roles::TABLE
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|((name, _), _)| *name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_ingest_goes_with_its_writer() {
        assert_eq!(Roles::parse("all").unwrap(), Roles::ALL);
        let split = Roles::parse("query, detect").unwrap();
        assert!(split.query && split.detect && !split.ingest && !split.writer);
        assert!(split.check(false).is_ok());
        assert_eq!(split.names(), "detect,query");
        assert!(Roles::parse("ingest,writer").unwrap().check(false).is_ok());
        assert_eq!(Roles::parse("write").unwrap().names(), "ingest,writer");
        assert_eq!(
            Roles::parse("read").unwrap().names(),
            "detect,query,web,notify"
        );
        assert_eq!(
            Roles::parse("write,read").unwrap(),
            Roles::parse("all").unwrap()
        );
        for alone in ["ingest", "writer,query"] {
            let err = Roles::parse(alone).unwrap().check(false).unwrap_err();
            assert!(err.starts_with("invalid --roles"), "{err}");
            assert!(err.contains("--redis-url"), "{err}");
            // With a buffer between processes, each runs on its own.
            assert!(Roles::parse(alone).unwrap().check(true).is_ok());
        }
        assert!(
            Roles::parse("ingest,wrtier")
                .unwrap_err()
                .contains("wrtier")
        );
        assert!(Roles::parse("").is_err());
    }
}

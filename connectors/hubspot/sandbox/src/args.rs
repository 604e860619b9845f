//! The sandbox's command-line flags, defined here so the engine's CLI
//! (`engine sandbox hubspot`) flattens them instead of repeating them.
//!
//! Every limit and fault is off unless a flag turns it on; `--tier` fills in HubSpot's limits
//! for an account tier, and explicit limit flags override it. The flags mirror the keys of
//! `POST /_sandbox/faults`, which can change everything later at run time.

use clap::{Args, ValueEnum};

use crate::{Faults, SandboxConfig};

/// HubSpot's search limit: 4 requests per second, a bucket of its own (FACTS R2).
pub const HUBSPOT_SEARCH_REQUESTS_PER_SECOND: u32 = 4;

/// A HubSpot account tier, for its API limits (FACTS R1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Tier {
    /// 100 requests per 10 seconds, 250,000 per day.
    Free,
    /// 100 requests per 10 seconds, 250,000 per day.
    Starter,
    /// 190 requests per 10 seconds, 625,000 per day.
    Professional,
    /// 190 requests per 10 seconds, 1,000,000 per day.
    Enterprise,
}

impl Tier {
    /// The tier's burst limit (per rolling ten seconds) and daily limit.
    pub fn limits(self) -> (u32, u64) {
        match self {
            Tier::Free | Tier::Starter => (100, 250_000),
            Tier::Professional => (190, 625_000),
            Tier::Enterprise => (190, 1_000_000),
        }
    }
}

/// A share from 0 to 1.
fn share(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("`{text}` is not a number from 0 to 1"))
}

/// Limits and faults of `engine sandbox hubspot` (flatten into the command with
/// `#[command(flatten)]`, then call [`SandboxArgs::into_config`]).
#[derive(Clone, Debug, Default, PartialEq, Args)]
pub struct SandboxArgs {
    /// Answer 429 `SECONDLY` past this many requests per second.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Answer 429 `TEN_SECONDLY_ROLLING` past this many requests in any 10 seconds (HubSpot: 100
    /// on Free and Starter, 190 on Professional and Enterprise).
    #[arg(long, value_name = "N")]
    pub burst_limit: Option<u32>,
    /// Answer 429 `DAILY` past this many requests in a UTC day.
    #[arg(long, value_name = "N")]
    pub daily_limit: Option<u64>,
    /// Answer 429 `SECONDLY` past this many searches per second (HubSpot: 4; searches have
    /// their own bucket).
    #[arg(long, value_name = "N")]
    pub search_rate_limit: Option<u32>,
    /// Enforce a HubSpot tier's burst and daily limits and the search limit of 4 per second;
    /// the limit flags above override it.
    #[arg(long, value_enum, value_name = "TIER")]
    pub tier: Option<Tier>,
    /// Answer this share (0 to 1) of write requests with a server error, unapplied.
    #[arg(long, value_name = "SHARE", value_parser = share)]
    pub error_rate: Option<f64>,
    /// The status of those server errors (500 to 599) [default: 500].
    #[arg(long, value_name = "STATUS", value_parser = clap::value_parser!(u16).range(500..=599))]
    pub error_status: Option<u16>,
    /// Apply this share (0 to 1) of write requests, then close the connection without an
    /// answer.
    #[arg(long, value_name = "SHARE", value_parser = share)]
    pub drop_rate: Option<f64>,
    /// Seed of the `--error-rate`, `--drop-rate` and `--latency-jitter-ms` draws [default: 0].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Delay every API request by this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<u64>,
    /// Delay every API request by up to this many more milliseconds, drawn per request.
    #[arg(long, value_name = "MS")]
    pub latency_jitter_ms: Option<u64>,
    /// Answer 403 `MISSING_SCOPES` to requests needing one of these scopes (comma-separated,
    /// e.g. `crm.objects.contacts.write`).
    #[arg(long, value_name = "SCOPES", value_delimiter = ',')]
    pub missing_scopes: Vec<String>,
    /// Answer 423 Locked to the first N write requests.
    #[arg(long, value_name = "N")]
    pub locked_writes: Option<u64>,
    /// Answer 477 Migration in Progress to the first N API requests.
    #[arg(long, value_name = "N")]
    pub migration_requests: Option<u64>,
    /// The `Retry-After` seconds of a 477 [default: 1].
    #[arg(long, value_name = "SECONDS")]
    pub migration_retry_after: Option<u64>,
    /// Answer every API request with 429 `DAILY`, as when the daily limit is used up.
    #[arg(long)]
    pub daily_limit_reached: bool,
}

impl SandboxArgs {
    /// The configuration these flags describe, accepting `token`.
    pub fn into_config(self, token: impl Into<String>) -> SandboxConfig {
        let tier = self.tier.map(Tier::limits);
        SandboxConfig {
            token: token.into(),
            requests_per_second: self.rate_limit,
            requests_per_ten_seconds: self.burst_limit.or(tier.map(|(burst, _)| burst)),
            requests_per_day: self.daily_limit.or(tier.map(|(_, daily)| daily)),
            search_requests_per_second: self
                .search_rate_limit
                .or(tier.map(|_| HUBSPOT_SEARCH_REQUESTS_PER_SECOND)),
            faults: Faults {
                error_rate: self.error_rate,
                error_status: self.error_status,
                drop_rate: self.drop_rate,
                seed: self.seed,
                latency_ms: self.latency_ms,
                latency_jitter_ms: self.latency_jitter_ms,
                missing_scopes: self.missing_scopes,
                locked_writes: self.locked_writes.filter(|n| *n > 0),
                migration_requests: self.migration_requests.filter(|n| *n > 0),
                migration_retry_after: self.migration_retry_after,
                daily_limit_reached: self.daily_limit_reached,
                ..Faults::default()
            },
            ..SandboxConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Stands in for the engine's `sandbox hubspot` command.
    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        sandbox: SandboxArgs,
    }

    fn parse(args: &[&str]) -> Result<SandboxArgs, clap::Error> {
        let argv = std::iter::once("sandbox").chain(args.iter().copied());
        Command::try_parse_from(argv).map(|c| c.sandbox)
    }

    #[test]
    fn no_flags_is_the_default_config() {
        let args = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args, SandboxArgs::default());
        let config = args.into_config("t");
        assert_eq!(config.token, "t");
        assert_eq!(config.requests_per_second, None);
        assert_eq!(config.requests_per_ten_seconds, None);
        assert_eq!(config.requests_per_day, None);
        assert_eq!(config.search_requests_per_second, None);
        assert_eq!(config.max_batch_inputs, 100);
        assert_eq!(config.faults, Faults::default());
    }

    #[test]
    fn every_flag_reaches_the_config() {
        let args = parse(&[
            "--rate-limit=10",
            "--burst-limit",
            "100",
            "--daily-limit=250000",
            "--search-rate-limit=4",
            "--error-rate=0.1",
            "--error-status=503",
            "--drop-rate=0.05",
            "--seed=7",
            "--latency-ms=20",
            "--latency-jitter-ms=5",
            "--missing-scopes=crm.objects.contacts.write,crm.schemas.contacts.read",
            "--locked-writes=2",
            "--migration-requests=1",
            "--migration-retry-after=3",
            "--daily-limit-reached",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let config = args.into_config("sandbox-token");
        assert_eq!(config.requests_per_second, Some(10));
        assert_eq!(config.requests_per_ten_seconds, Some(100));
        assert_eq!(config.requests_per_day, Some(250_000));
        assert_eq!(config.search_requests_per_second, Some(4));
        let faults = config.faults;
        assert_eq!(faults.error_rate, Some(0.1));
        assert_eq!(faults.error_status, Some(503));
        assert_eq!(faults.drop_rate, Some(0.05));
        assert_eq!(faults.seed, Some(7));
        assert_eq!(faults.latency_ms, Some(20));
        assert_eq!(faults.latency_jitter_ms, Some(5));
        assert_eq!(
            faults.missing_scopes,
            ["crm.objects.contacts.write", "crm.schemas.contacts.read"]
        );
        assert_eq!(faults.locked_writes, Some(2));
        assert_eq!(faults.migration_requests, Some(1));
        assert_eq!(faults.migration_retry_after, Some(3));
        assert!(faults.daily_limit_reached);
        assert_eq!(faults.hang_after_write, None);
    }

    #[test]
    fn a_tier_fills_in_the_limits_not_given() {
        let config = parse(&["--tier", "professional", "--daily-limit=5"])
            .unwrap_or_else(|e| panic!("{e}"))
            .into_config("t");
        assert_eq!(config.requests_per_ten_seconds, Some(190));
        assert_eq!(config.requests_per_day, Some(5));
        assert_eq!(config.search_requests_per_second, Some(4));
        assert_eq!(config.requests_per_second, None);
        let free = parse(&["--tier=free"])
            .unwrap_or_else(|e| panic!("{e}"))
            .into_config("t");
        assert_eq!(free.requests_per_ten_seconds, Some(100));
        assert_eq!(free.requests_per_day, Some(250_000));
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["--error-rate=1.5"][..],
            &["--drop-rate=-0.1"],
            &["--error-status=404"],
            &["--tier=gold"],
            &["--rate-limit=-1"],
            &["--latency-ms=soon"],
            &["--unknown"],
        ] {
            assert!(parse(args).is_err(), "{args:?} parsed");
        }
    }
}

//! The sandbox's command-line flags, defined here so the engine's CLI
//! (`engine sandbox salesforce`) flattens them instead of repeating them.
//!
//! Every fault is off and every credential has the default of [`SandboxConfig`] unless a flag
//! says otherwise. The fault flags mirror the keys of `POST /_sandbox/faults`, which can
//! change them later at run time.

use std::path::PathBuf;

use clap::Args;

use crate::{Faults, SandboxConfig};

/// Credentials, limits, custom objects and faults of `engine sandbox salesforce` (flatten
/// into the command with `#[command(flatten)]`, then call [`SandboxArgs::into_config`]).
#[derive(Clone, Debug, Default, PartialEq, Args)]
pub struct SandboxArgs {
    /// The connected app's consumer key the token endpoint accepts [default: sandbox-client-id].
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// The consumer secret the token endpoint accepts [default: sandbox-client-secret].
    #[arg(long, value_name = "SECRET")]
    pub client_secret: Option<String>,
    /// The refresh token the token endpoint accepts [default: sandbox-refresh-token].
    #[arg(long, value_name = "TOKEN")]
    pub refresh_token: Option<String>,
    /// The API user's username, the `sub` a JWT assertion must name (default: `sandbox@example.com`).
    #[arg(long, value_name = "USERNAME")]
    pub username: Option<String>,
    /// The connected app certificate's public key (PEM): JWT bearer assertions must be signed
    /// with its private key (RS256). Without it, their signatures are not checked.
    #[arg(long, value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// The daily API allocation; past it, 403 `REQUEST_LIMIT_EXCEEDED` [default: 100000].
    #[arg(long, value_name = "N")]
    pub api_allocation: Option<u64>,
    /// Access tokens expire after this many API requests (then 401 `INVALID_SESSION_ID`).
    #[arg(long, value_name = "N")]
    pub token_ttl_requests: Option<u64>,
    /// Access tokens expire after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub token_ttl_seconds: Option<u64>,
    /// Milliseconds a Bulk job spends in UploadComplete and again in InProgress [default: 200].
    #[arg(long, value_name = "MS")]
    pub bulk_processing_ms: Option<u64>,
    /// Custom objects and fields to define at start (JSON, or YAML by extension).
    #[arg(long, value_name = "FILE")]
    pub objects: Option<PathBuf>,
    /// Delay every API request by this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<u64>,
    /// Answer the first N API requests with 503 `SERVER_UNAVAILABLE`.
    #[arg(long, value_name = "N")]
    pub unavailable_requests: Option<u64>,
    /// Answer the first N API requests with 403 `REQUEST_LIMIT_EXCEEDED`.
    #[arg(long, value_name = "N")]
    pub limit_exceeded_requests: Option<u64>,
    /// Apply the first N API requests, then close their connections without an answer.
    #[arg(long, value_name = "N")]
    pub dropped_requests: Option<u64>,
    /// Answer every API request with 403 `API_DISABLED_FOR_ORG`, as for a user without API access.
    #[arg(long)]
    pub api_disabled: bool,
    /// Objects the user cannot see (comma-separated, e.g. `Lead`).
    #[arg(long, value_name = "OBJECTS", value_delimiter = ',')]
    pub inaccessible_objects: Vec<String>,
}

impl SandboxArgs {
    /// The configuration these flags describe, accepting `token` as a ready access token.
    pub fn into_config(self, token: impl Into<String>) -> SandboxConfig {
        let defaults = SandboxConfig::default();
        SandboxConfig {
            token: token.into(),
            client_id: self.client_id.unwrap_or(defaults.client_id),
            client_secret: self.client_secret.unwrap_or(defaults.client_secret),
            refresh_token: self.refresh_token.unwrap_or(defaults.refresh_token),
            username: self.username.unwrap_or(defaults.username),
            jwt_public_key: self.jwt_public_key,
            api_allocation: self.api_allocation.unwrap_or(defaults.api_allocation),
            token_ttl_requests: self.token_ttl_requests,
            token_ttl_seconds: self.token_ttl_seconds,
            bulk_processing_ms: self
                .bulk_processing_ms
                .unwrap_or(defaults.bulk_processing_ms),
            objects_file: self.objects,
            custom_objects: Vec::new(),
            faults: Faults {
                latency_ms: self.latency_ms,
                unavailable_requests: self.unavailable_requests.filter(|n| *n > 0),
                limit_exceeded_requests: self.limit_exceeded_requests.filter(|n| *n > 0),
                dropped_requests: self.dropped_requests.filter(|n| *n > 0),
                api_disabled: self.api_disabled,
                inaccessible_objects: self.inaccessible_objects,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Stands in for the engine's `sandbox salesforce` command.
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
        let config = args.into_config("t");
        let defaults = SandboxConfig::default();
        assert_eq!(config.token, "t");
        assert_eq!(config.client_id, defaults.client_id);
        assert_eq!(config.api_allocation, 100_000);
        assert_eq!(config.faults, Faults::default());
    }

    #[test]
    fn every_flag_reaches_the_config() {
        let config = parse(&[
            "--client-id=c",
            "--client-secret=s",
            "--refresh-token=r",
            "--username=u@x.com",
            "--api-allocation=50",
            "--token-ttl-requests=3",
            "--token-ttl-seconds=60",
            "--bulk-processing-ms=5",
            "--objects=objects.yaml",
            "--latency-ms=7",
            "--unavailable-requests=1",
            "--limit-exceeded-requests=2",
            "--dropped-requests=3",
            "--api-disabled",
            "--inaccessible-objects=Lead,Account",
        ])
        .unwrap_or_else(|e| panic!("{e}"))
        .into_config("t");
        assert_eq!(
            (config.client_id.as_str(), config.client_secret.as_str()),
            ("c", "s")
        );
        assert_eq!(config.refresh_token, "r");
        assert_eq!(config.username, "u@x.com");
        assert_eq!(config.api_allocation, 50);
        assert_eq!(config.token_ttl_requests, Some(3));
        assert_eq!(config.token_ttl_seconds, Some(60));
        assert_eq!(config.bulk_processing_ms, 5);
        assert_eq!(config.objects_file, Some(PathBuf::from("objects.yaml")));
        let faults = config.faults;
        assert_eq!(faults.latency_ms, Some(7));
        assert_eq!(faults.unavailable_requests, Some(1));
        assert_eq!(faults.limit_exceeded_requests, Some(2));
        assert_eq!(faults.dropped_requests, Some(3));
        assert!(faults.api_disabled);
        assert_eq!(faults.inaccessible_objects, ["Lead", "Account"]);
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["--api-allocation=-1"][..],
            &["--latency-ms=soon"],
            &["--unknown"],
        ] {
            assert!(parse(args).is_err(), "{args:?} parsed");
        }
    }
}

//! `engine sandbox hubspot|salesforce`: the bundled destination-compatible APIs, for the
//! quickstart, the examples and tests.

use std::future::Future;

use crate::args::SandboxKind;
use crate::views;

pub async fn run(kind: SandboxKind) -> u8 {
    match kind {
        SandboxKind::Hubspot {
            port,
            token,
            limits,
        } => {
            let config = limits.into_config(token);
            serve("HubSpot", port, |listener| {
                hubspot_sandbox::serve(config, listener)
            })
            .await
        }
        SandboxKind::Salesforce {
            port,
            token,
            settings,
        } => {
            let config = settings.into_config(token);
            serve("Salesforce", port, |listener| {
                salesforce_sandbox::serve(config, listener)
            })
            .await
        }
    }
}

/// Listens on `127.0.0.1:port` and serves a sandbox until it stops or Ctrl-C.
async fn serve<F, S>(name: &str, port: u16, start: S) -> u8
where
    S: FnOnce(tokio::net::TcpListener) -> F,
    F: Future<Output = std::io::Result<()>>,
{
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(e) => {
            views::error_line(&format!("error: cannot listen on 127.0.0.1:{port}: {e}"));
            views::error_line("  = hint: pick another port with `--port`");
            return 1;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    views::status(&format!(
        "{name} sandbox listening on http://127.0.0.1:{port} (Ctrl-C to stop)"
    ));
    tokio::select! {
        result = start(listener) => match result {
            Ok(()) => 0,
            Err(e) => {
                views::error_line(&format!("error: the sandbox stopped: {e}"));
                1
            }
        },
        _ = tokio::signal::ctrl_c() => 0,
    }
}

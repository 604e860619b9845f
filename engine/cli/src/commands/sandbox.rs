//! `engine sandbox hubspot`: the bundled HubSpot-compatible API, for the quickstart and tests.

use crate::args::SandboxKind;
use crate::views;

pub async fn run(kind: SandboxKind) -> u8 {
    match kind {
        SandboxKind::Hubspot {
            port,
            token,
            limits,
        } => {
            let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => listener,
                Err(e) => {
                    views::error_line(&format!("error: cannot listen on 127.0.0.1:{port}: {e}"));
                    views::error_line("  = hint: pick another port with `--port`");
                    return 1;
                }
            };
            let config = limits.into_config(token);
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
            views::status(&format!(
                "HubSpot sandbox listening on http://127.0.0.1:{port} (Ctrl-C to stop)"
            ));
            tokio::select! {
                result = engine_sandbox::serve(config, listener) => match result {
                    Ok(()) => 0,
                    Err(e) => {
                        views::error_line(&format!("error: the sandbox stopped: {e}"));
                        1
                    }
                },
                _ = tokio::signal::ctrl_c() => 0,
            }
        }
    }
}

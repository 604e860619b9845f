//! End-to-end tests: the real `engine` binary against the bundled HubSpot sandbox over HTTP.

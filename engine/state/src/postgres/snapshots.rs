//! Snapshots kept in PostgreSQL and materialized on the local disk.
//!
//! The engine reads and writes snapshots as local Parquet files, so the PostgreSQL backend keeps
//! their bytes in `snapshot_chunks` (written in the transaction that moves the generation, with
//! their SHA-256 digest in `syncs`) and keeps a cache of the current generation's file under the
//! project's state directory (`snapshots/<sync>/gen-N.parquet`, as the local backend lays them
//! out). A file missing from the cache, or whose digest differs (a crashed apply's leftover, a
//! damaged disk), is downloaded again; a machine with an empty state directory plans and
//! applies from what PostgreSQL holds.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::worker::pg_error;
use crate::StateError;

/// Bytes per stored chunk: large enough for few round trips, small enough for one message.
const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// The hex SHA-256 of a file.
pub(crate) fn file_digest(path: &Path) -> Result<(String, u64), StateError> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((crate::local::hex(&hasher.finalize()), bytes))
}

/// Stores the file at `path` as the snapshot of `sync` at `generation`, inside the caller's
/// transaction, and drops the chunks of every other generation of the sync. Returns its digest
/// and size.
pub(crate) async fn upload(
    client: &Client,
    schema: &str,
    sync: &str,
    generation: i64,
    path: &Path,
) -> Result<(String, i64), StateError> {
    let (digest, bytes) = file_digest(path)?;
    client
        .execute(
            &format!("DELETE FROM {schema}.snapshot_chunks WHERE sync = $1"),
            &[&sync],
        )
        .await
        .map_err(pg_error)?;
    let insert = client
        .prepare(&format!(
            "INSERT INTO {schema}.snapshot_chunks (sync, generation, chunk, bytes) VALUES ($1, $2, $3, $4)"
        ))
        .await
        .map_err(pg_error)?;
    let mut file = fs_err::File::open(path)?;
    let mut chunk = 0i32;
    loop {
        let mut buffer = Vec::with_capacity(CHUNK_BYTES);
        std::io::Read::by_ref(&mut file)
            .take(CHUNK_BYTES as u64)
            .read_to_end(&mut buffer)?;
        if buffer.is_empty() {
            break;
        }
        client
            .execute(&insert, &[&sync, &generation, &chunk, &buffer])
            .await
            .map_err(pg_error)?;
        chunk += 1;
    }
    Ok((digest, bytes as i64))
}

/// Writes the stored snapshot of `sync` at `generation` to `path` (through a temporary file,
/// renamed when whole) and checks it against `digest`.
pub(crate) async fn download(
    client: &Client,
    schema: &str,
    sync: &str,
    generation: i64,
    digest: &str,
    path: &Path,
) -> Result<(), StateError> {
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("download");
    let chunks: Vec<i32> = client
        .query(
            &format!(
                "SELECT chunk FROM {schema}.snapshot_chunks WHERE sync = $1 AND generation = $2 ORDER BY chunk"
            ),
            &[&sync, &generation],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let select = client
        .prepare(&format!(
            "SELECT bytes FROM {schema}.snapshot_chunks WHERE sync = $1 AND generation = $2 AND chunk = $3"
        ))
        .await
        .map_err(pg_error)?;
    let written = async {
        let mut file = fs_err::File::create(&tmp)?;
        for chunk in &chunks {
            let row = client
                .query_one(&select, &[&sync, &generation, chunk])
                .await
                .map_err(pg_error)?;
            let bytes: &[u8] = row.get(0);
            file.write_all(bytes)?;
        }
        file.sync_all()?;
        Ok::<(), StateError>(())
    }
    .await;
    if let Err(error) = written {
        let _ = fs_err::remove_file(&tmp);
        return Err(error);
    }
    let (found, _) = file_digest(&tmp)?;
    if found != digest {
        let _ = fs_err::remove_file(&tmp);
        return Err(StateError::Corrupt {
            file: path.to_path_buf(),
            message: format!(
                "the snapshot of sync `{sync}` at generation {generation} stored in schema `{schema}` is damaged: its digest is {found}, the state recorded {digest}"
            ),
        });
    }
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// Stores `files` as the change files of run `run_id`, in order, inside the caller's
/// transaction.
pub(crate) async fn upload_run_files(
    client: &Client,
    schema: &str,
    run_id: i64,
    files: &[PathBuf],
) -> Result<(), StateError> {
    let insert = client
        .prepare(&format!(
            "INSERT INTO {schema}.run_files (run_id, part, chunk, bytes) VALUES ($1, $2, $3, $4)"
        ))
        .await
        .map_err(pg_error)?;
    for (part, path) in files.iter().enumerate() {
        let mut file = fs_err::File::open(path)?;
        let mut chunk = 0i32;
        loop {
            let mut buffer = Vec::with_capacity(CHUNK_BYTES);
            std::io::Read::by_ref(&mut file)
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut buffer)?;
            if buffer.is_empty() && chunk > 0 {
                break;
            }
            client
                .execute(&insert, &[&run_id, &(part as i32), &chunk, &buffer])
                .await
                .map_err(pg_error)?;
            if buffer.len() < CHUNK_BYTES {
                break;
            }
            chunk += 1;
        }
    }
    Ok(())
}

/// Writes run `run_id`'s stored change files into `dir` (`changes-N.parquet`); `None` when
/// none are stored.
pub(crate) async fn download_run_files(
    client: &Client,
    schema: &str,
    run_id: i64,
    dir: &Path,
) -> Result<Option<Vec<PathBuf>>, StateError> {
    let chunks: Vec<(i32, i32)> = client
        .query(
            &format!(
                "SELECT part, chunk FROM {schema}.run_files WHERE run_id = $1 ORDER BY part, chunk"
            ),
            &[&run_id],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if chunks.is_empty() {
        return Ok(None);
    }
    fs_err::create_dir_all(dir)?;
    let select = client
        .prepare(&format!(
            "SELECT bytes FROM {schema}.run_files WHERE run_id = $1 AND part = $2 AND chunk = $3"
        ))
        .await
        .map_err(pg_error)?;
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut current: Option<(i32, fs_err::File)> = None;
    for (part, chunk) in chunks {
        if current.as_ref().is_none_or(|(p, _)| *p != part) {
            if let Some((_, file)) = current.take() {
                file.sync_all()?;
            }
            let path = dir.join(format!("changes-{part}.parquet"));
            current = Some((part, fs_err::File::create(&path)?));
            paths.push(path);
        }
        let row = client
            .query_one(&select, &[&run_id, &part, &chunk])
            .await
            .map_err(pg_error)?;
        let bytes: &[u8] = row.get(0);
        if let Some((_, file)) = current.as_mut() {
            file.write_all(bytes)?;
        }
    }
    if let Some((_, file)) = current.take() {
        file.sync_all()?;
    }
    Ok(Some(paths))
}

/// The cache path of a sync's snapshot at a generation.
pub(crate) fn cache_path(dir: &Path, sync: &str, generation: u64) -> PathBuf {
    dir.join("snapshots")
        .join(sync)
        .join(format!("gen-{generation}.parquet"))
}

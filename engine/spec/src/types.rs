//! The resolved project: what the rest of the engine reads after loading and checking YAML.
//!
//! Every name a user wrote keeps its [`SourceSpan`] so later stages (SQL planning, mapping
//! checks against the model's columns) can point back into the YAML.

use std::path::PathBuf;

use engine_diag::SourceSpan;

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Its position in the project's files.
    pub span: SourceSpan,
}

/// How much run history the state keeps (`state.retention` in `engine.yaml`): per sync, the
/// newest `runs` finished runs, and none older than `days` days, but always the newest one.
/// Rows still pending are never pruned (they live apart from run history), and an
/// interrupted run keeps everything until it is recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Finished runs kept per sync.
    pub runs: u32,
    /// Days a finished run is kept.
    pub days: u32,
}

impl Retention {
    /// 100 runs per sync (four days of an hourly sync), at most 90 days.
    pub const DEFAULT: Retention = Retention {
        runs: 100,
        days: 90,
    };
}

impl Default for Retention {
    fn default() -> Self {
        Retention::DEFAULT
    }
}

/// Which backend holds the state (`state.backend` in `engine.yaml`).
#[derive(Debug, Clone, Default)]
pub enum StateBackend {
    /// Files under `state.path` (the default).
    #[default]
    Local,
    /// A PostgreSQL schema shared by every machine that reaches it; `state.path` keeps the
    /// snapshot cache and scratch files.
    Postgres(StatePostgresSpec),
}

/// `state:` with `backend: postgres`.
#[derive(Debug, Clone)]
pub struct StatePostgresSpec {
    /// `url:` the connection URL; a password only through `${env:…}`.
    pub url: EnvTemplate,
    /// `schema:` the schema that holds the state's tables (default `engine_state`).
    pub schema: Located<String>,
    /// `tls:`; `None`: as the URL's `sslmode` says, else `prefer`.
    pub tls: Option<SourceTls>,
    /// `ca_file:` resolved against the project root.
    pub ca_file: Option<PathBuf>,
}

/// The schema that holds the state when `state.schema` is not given.
pub const DEFAULT_STATE_SCHEMA: &str = "engine_state";

/// A whole project: `engine.yaml` plus every file under `models/` and `syncs/`.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory (holds `engine.yaml`), absolute.
    pub root: PathBuf,
    /// `project:` in `engine.yaml`.
    pub name: String,
    /// Where the embedded state lives, absolute (default `<root>/.engine`).
    pub state_dir: PathBuf,
    /// How long run history is kept (`state.retention`).
    pub retention: Retention,
    /// Which backend holds the state (`state.backend`).
    pub state_backend: StateBackend,
    /// File tables visible to every model's SQL.
    pub tables: Vec<TableSpec>,
    /// Warehouses that models with `source:` run in.
    pub sources: Vec<SourceSpec>,
    /// Destinations (a CRM account), reused by many syncs.
    pub destinations: Vec<DestinationSpec>,
    /// Models, sorted by name.
    pub models: Vec<ModelSpec>,
    /// Syncs, sorted by name.
    pub syncs: Vec<SyncSpec>,
    /// The Salesforce-only settings of syncs that have any, by sync name.
    pub salesforce_syncs: Vec<SalesforceSyncSpec>,
}

impl Project {
    /// The model with this name.
    pub fn model(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name.value == name)
    }

    /// The warehouse source with this name.
    pub fn source(&self, name: &str) -> Option<&SourceSpec> {
        self.sources.iter().find(|s| s.name.value == name)
    }

    /// The destination with this name.
    pub fn destination(&self, name: &str) -> Option<&DestinationSpec> {
        self.destinations.iter().find(|d| d.name.value == name)
    }

    /// The sync with this name.
    pub fn sync(&self, name: &str) -> Option<&SyncSpec> {
        self.syncs.iter().find(|s| s.name.value == name)
    }

    /// The Salesforce-only settings of the sync with this name, when it has any.
    pub fn salesforce_sync(&self, name: &str) -> Option<&SalesforceSyncSpec> {
        self.salesforce_syncs.iter().find(|s| s.sync == name)
    }
}

/// The format of a file table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma (or `delimiter`) separated values.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Newline-delimited JSON.
    Ndjson,
}

/// A file (or glob directory) exposed to SQL as a table.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// The SQL table name (the key under `tables:`).
    pub name: Located<String>,
    /// The file, absolute (resolved against the project root).
    pub path: PathBuf,
    /// The path as written, for messages.
    pub path_span: SourceSpan,
    /// The file's format.
    pub format: FileFormat,
    /// CSV only: the first line holds column names (default true).
    pub has_header: bool,
    /// CSV only: the field delimiter (default `,`).
    pub delimiter: u8,
}

/// The kinds of destination the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    /// HubSpot CRM (or the bundled sandbox).
    Hubspot,
    /// Salesforce (an org, or the bundled sandbox).
    Salesforce,
}

/// A string that may reference environment variables as `${env:NAME}`; resolved only when a
/// command needs it, so `validate` works without secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvTemplate {
    /// The text as written, e.g. `${env:HUBSPOT_TOKEN}`.
    pub raw: String,
    /// Where it was written.
    pub span: SourceSpan,
}

/// The kind of warehouse a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// PostgreSQL (and wire-compatible warehouses).
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

/// How a source's connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceTls {
    /// Never (a local database, a trusted network).
    Disable,
    /// When the server offers it (the default, as `sslmode=prefer`).
    Prefer,
    /// Always; the certificate is not checked against a CA.
    Require,
    /// Always, with the certificate checked against the system's (or `ca_file`'s) CAs and
    /// the host name.
    VerifyFull,
}

/// A warehouse models can run in: `sources.<name>` of `engine.yaml`.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The key under `sources:`.
    pub name: Located<String>,
    /// `type:`.
    pub kind: SourceKind,
    /// `url:` the connection URL, with any password from `${env:…}`.
    pub url: EnvTemplate,
    /// `tls:`; `None`: as the URL's `sslmode` / `ssl-mode` says, else `prefer`.
    pub tls: Option<SourceTls>,
    /// `ca_file:` resolved against the project root.
    pub ca_file: Option<PathBuf>,
    /// `statement_timeout:` how long a model's query may run.
    pub statement_timeout: Option<std::time::Duration>,
}

/// A destination: one CRM account and how to reach it.
#[derive(Debug, Clone)]
pub struct DestinationSpec {
    /// The key under `destinations:`.
    pub name: Located<String>,
    /// `type:`.
    pub kind: DestinationKind,
    /// `base_url:` (default: the vendor's production API).
    pub base_url: Option<EnvTemplate>,
    /// `token:` (a private-app token); must use `${env:NAME}`.
    pub token: Option<EnvTemplate>,
    /// `rate_limit.requests_per_second:`.
    pub requests_per_second: Option<f64>,
    /// Salesforce only: `login:` where tokens come from: `login` (production), `test`
    /// (sandbox orgs), or a URL (My Domain, the bundled sandbox); `${env:NAME}` allowed.
    pub login: Option<EnvTemplate>,
    /// Salesforce only: `auth:` the connected app's credentials.
    pub auth: Option<SalesforceAuthSpec>,
    /// Salesforce only: `api_version:` such as `v62.0`.
    pub api_version: Option<Located<String>>,
    /// Salesforce only: `rate_limit.daily_share:` the share (0–1] of the org's daily API
    /// allocation after which a run stops.
    pub daily_share: Option<f64>,
}

/// `auth:` of a Salesforce destination: one of the two OAuth 2.0 flows a server can run
/// unattended. Every value is a `${env:NAME}` reference, resolved only by the command that
/// connects.
#[derive(Debug, Clone, PartialEq)]
pub enum SalesforceAuthSpec {
    /// The refresh-token flow: a user authorized the connected app once.
    RefreshToken {
        /// `consumer_key:` the connected app's consumer key.
        consumer_key: EnvTemplate,
        /// `consumer_secret:` the connected app's consumer secret.
        consumer_secret: EnvTemplate,
        /// `refresh_token:` the refresh token a user's authorization gave.
        refresh_token: EnvTemplate,
    },
    /// The JWT bearer flow: assertions signed with the private key of the certificate
    /// uploaded to the connected app, for a pre-authorized user.
    JwtBearer {
        /// `consumer_key:` the connected app's consumer key.
        consumer_key: EnvTemplate,
        /// `username:` the Salesforce username the engine acts as.
        username: EnvTemplate,
        /// `private_key:` the certificate's RSA private key, PEM.
        private_key: EnvTemplate,
    },
}

/// What the record-matching cascade does when several records share one email.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnDuplicate {
    /// The row is rejected with the records' ids (default).
    #[default]
    Fail,
    /// The most recently modified record is taken.
    MostRecent,
}

/// `match_records:` of a Salesforce sync: the cascade that fills lookup fields (ThankView's
/// "How Contact Matching Works"): a Contact by the row's id column, else a Contact by email,
/// else a Lead by email, else the row is reported and not synced.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchRecordsSpec {
    /// `id_column:` a model column that may hold a Contact id (15 or 18 characters).
    pub id_column: Option<Located<String>>,
    /// `email_column:` a model column holding the recipient's email.
    pub email_column: Option<Located<String>>,
    /// `contact_field:` the lookup field that receives a matched Contact's id.
    pub contact_field: Located<String>,
    /// `lead_field:` the lookup field that receives a matched Lead's id; without it the
    /// cascade stops at Contacts.
    pub lead_field: Option<Located<String>>,
    /// `on_duplicate:`.
    pub on_duplicate: OnDuplicate,
    /// Where the block was written.
    pub span: SourceSpan,
}

/// The property under which the cascade's id column travels to the connector (never sent to
/// Salesforce: no field's API name holds a `.`).
pub const MATCH_RECORDS_ID_PROPERTY: &str = "match_records.id";

/// The property under which the cascade's email column travels to the connector.
pub const MATCH_RECORDS_EMAIL_PROPERTY: &str = "match_records.email";

/// The Salesforce-only settings of one sync (`match_records:`, `bulk_threshold:`), kept
/// beside the [`SyncSpec`] they belong to.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceSyncSpec {
    /// The sync's name.
    pub sync: String,
    /// `match_records:`.
    pub match_records: Option<MatchRecordsSpec>,
    /// `bulk_threshold:` rows of one kind in one apply above which Bulk API 2.0 is used.
    pub bulk_threshold: Option<Located<usize>>,
}

/// A model: SQL whose rows are what a sync keeps in a destination.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// `name:`.
    pub name: Located<String>,
    /// The file the model was loaded from (relative to the project root).
    pub file: PathBuf,
    /// `description:`.
    pub description: Option<String>,
    /// `source:` the warehouse the SQL runs in; `None`: the project's file tables.
    pub source: Option<Located<String>>,
    /// `primary_key:` (one or more columns).
    pub primary_key: Vec<Located<String>>,
    /// `sql:` text.
    pub sql: String,
    /// Where the SQL text starts: line/column of its first character in the file.
    pub sql_span: SourceSpan,
    /// For block scalars (`sql: |`), the indentation stripped from each following line, so a
    /// position (line, column) inside the SQL maps to file line `sql_span.line + line - 1` and
    /// column `sql_indent + column` (first SQL line: `sql_span.column + column - 1`).
    pub sql_indent: usize,
}

/// How a sync writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Create or update, matching on the `match` property.
    Upsert,
    /// Update records that exist (found by the `match` property, or by record id); a row
    /// without one is reported and nothing is created.
    Update,
    /// Create a record for each new row; a row whose match value a record holds already
    /// leaves that record untouched (skipped). Changed rows send nothing.
    Insert,
}

/// What happens in the destination when a row leaves the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRemove {
    /// Leave the record as it is (default); the row is forgotten by the state.
    Nothing,
    /// Empty every mapped property except the match property.
    ClearFields,
    /// Delete (archive) the record the row wrote.
    Delete,
}

/// What a null value does to the destination property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNull {
    /// Leave the destination's value alone (default).
    Keep,
    /// Clear the destination's value.
    Clear,
}

/// Where a mapped property's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MappingSource {
    /// `column:` a model column.
    Column(Located<String>),
    /// `value:` a static string.
    Value(Located<String>),
    /// `template:` a minijinja template rendered per row with `row` in scope.
    Template(Located<String>),
}

/// One destination property and where its value comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingSpec {
    /// `property:` the destination's internal property name.
    pub property: Located<String>,
    /// `column:` / `value:` / `template:`.
    pub source: MappingSource,
    /// `on_null:`.
    pub on_null: OnNull,
}

/// How rows are matched to destination records.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchSpec {
    /// `match.property:` a unique destination property (e.g. `email`).
    pub property: Located<String>,
    /// `match.column:` the model column holding its value.
    pub column: Located<String>,
    /// `match.on_invalid:` what a null, empty or shared match value does.
    pub on_invalid: OnInvalidMatch,
    /// `match.lookup:` how a new row's record is found.
    pub lookup: MatchLookup,
    /// `match.fallback:` mapped properties tried in order when `property` finds no record
    /// (first hit wins); a fallback implies [`MatchLookup::Search`].
    pub fallback: Vec<Located<String>>,
}

/// How a new row finds the record it writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MatchLookup {
    /// The match property holds unique values: the destination matches in the write itself
    /// (HubSpot's batch upsert) (default).
    #[default]
    Unique,
    /// The match property's values are not unique: records are looked up first, in batches
    /// (HubSpot's search API); a value that several records hold is a per-row error.
    Search,
}

/// What the plan does with rows whose match value is null, empty, or shared with another row
/// (two rows would write one record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnInvalidMatch {
    /// Stop the plan before any request, naming the rows (default).
    #[default]
    Fail,
    /// Leave those rows out; each is listed in the plan and in run history.
    Skip,
}

/// `associations:` one link from each record a sync writes to records of another object.
#[derive(Debug, Clone, PartialEq)]
pub struct AssociationSpec {
    /// `name:` how the plan and the state call it (default: `to`); unique within the sync.
    pub name: Located<String>,
    /// `to:` the object type linked to (`companies`, `deals`, a custom object).
    pub to: Located<String>,
    /// `column:` the model column naming the records to link: one value, a comma-separated
    /// string, a list, or `{"value": …, "label": …}` objects (a JSON text, a list or a struct).
    pub column: Located<String>,
    /// `by:` what the values are: record ids (`None`, the default, no look-up), or values of
    /// this unique property of the `to` object (looked up in batches).
    pub by: Option<Located<String>>,
    /// `label:` the association label for values that name none (a label's name, or a type
    /// id); `None` is HubSpot's unlabelled default association.
    pub label: Option<Located<String>>,
    /// `when:` which records get the link.
    pub when: AssociationWhen,
    /// `remove_stale:` unlink records that are no longer in the model (default: links are only
    /// ever added).
    pub remove_stale: bool,
}

/// `event:` a sync that sends one custom behavioural event per row added to its model
/// (`object: events`), instead of writing records.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// `name:` the event's name (its internal name or fully qualified `pe<portal>_<name>`),
    /// or `None` when `name_column` gives it per row.
    pub name: Option<Located<String>>,
    /// `name_column:` the model column holding each row's event name.
    pub name_column: Option<Located<String>>,
    /// `occurred_at:` the model column holding when the event happened (else: when sent).
    pub occurred_at: Option<Located<String>>,
}

/// `list:` a sync that keeps the members of a static list of contacts (`object: lists`): a
/// row added to the model adds its contact, a row that leaves removes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSpec {
    /// `name:` the list's name: found by it, or created with it on the first run (default: the
    /// model's name).
    pub name: Located<String>,
    /// `id:` the list's id, when the sync names an existing list by id.
    pub id: Option<Located<String>>,
}

/// Which written records an association links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AssociationWhen {
    /// Every record the sync writes (default).
    #[default]
    Always,
    /// Only records this run created (TimeRex: a contact is linked to its company only when
    /// the contact is new).
    Created,
}

/// Safety limits checked before anything is sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Guards {
    /// `guards.max_deletes:` at most this many removed rows per apply.
    pub max_deletes: Option<u64>,
    /// `guards.max_change_ratio:` at most this fraction (0–1) of the previously synced rows
    /// may be changed or removed per apply.
    pub max_change_ratio: Option<f64>,
}

/// A sync: one model kept in one destination object.
#[derive(Debug, Clone)]
pub struct SyncSpec {
    /// `name:`.
    pub name: Located<String>,
    /// The file the sync was loaded from (relative to the project root).
    pub file: PathBuf,
    /// `model:`.
    pub model: Located<String>,
    /// `destination:`.
    pub destination: Located<String>,
    /// `object:` e.g. `contacts`.
    pub object: Located<String>,
    /// `mode:`.
    pub mode: SyncMode,
    /// `match:`.
    pub match_on: MatchSpec,
    /// `mapping:` in the order written.
    pub mapping: Vec<MappingSpec>,
    /// `on_remove:`.
    pub on_remove: OnRemove,
    /// `guards:`.
    pub guards: Guards,
    /// `batch_size:` records per write request, when the sync sets it; otherwise the
    /// destination's largest ([`SyncSpec::batch_size_or`]). At most 200, and 100 for HubSpot.
    pub batch_size: Option<Located<usize>>,
    /// `associations:` in the order written.
    pub associations: Vec<AssociationSpec>,
    /// `event:` for `object: events`: the sync sends events instead of writing records.
    pub event: Option<EventSpec>,
    /// `list:` for `object: lists`: the sync keeps a list's members instead of writing
    /// records.
    pub list: Option<ListSpec>,
}

impl SyncSpec {
    /// Records per write request: the sync's `batch_size:`, else `largest` (what the
    /// destination's write endpoint takes).
    pub fn batch_size_or(&self, largest: usize) -> usize {
        self.batch_size
            .as_ref()
            .map_or(largest, |b| b.value.min(largest))
    }

    /// True when the sync sends events (`object: events`) rather than writing records: every
    /// added row is one event, sent once; changed and removed rows send nothing.
    pub fn sends_events(&self) -> bool {
        self.event.is_some()
    }

    /// True when the sync keeps a list's members (`object: lists`).
    pub fn keeps_list(&self) -> bool {
        self.list.is_some()
    }
}

//! `MongoStore`: sessions in MongoDB, one document per session, with a TTL index.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use session_mongodb::MongoStore;
//!
//! let store = MongoStore::connect("mongodb://127.0.0.1:27017/app").await?;
//! let custom = MongoStore::builder("mongodb://127.0.0.1:27017")
//!     .database("web")
//!     .collection("web_sessions")
//!     .connect()
//!     .await?;
//! let client = mongodb::Client::with_uri_str("mongodb://127.0.0.1:27017/app").await?;
//! let shared = MongoStore::from_client(client).connect().await?; // database "app"
//! # Ok(()) }
//! ```
//!
//! # Setting it up
//! Every store that takes a URL is set up the same way: [`MongoStore::connect`] with a URL
//! and the default settings, or a builder, finished by
//! [`connect`](MongoStoreBuilder::connect), that starts from a URL
//! ([`MongoStore::builder`]) or from a client the application already has
//! ([`MongoStore::from_client`]). `connect` creates the TTL and `user` indexes, so a server
//! that cannot be reached fails at start-up. The server removes expired sessions by itself through
//! that index; [`Store::delete_expired`] is there for a deployment that removed the index.
//!
//! # Documents
//! `{_id: "session:<id>", data: <binary>, expires_at: <date>, created_at: <date>, rev: <int64>}`
//! (and `user: <string>` on a user's session) in the database named in the URL (else
//! `sessions`), collection `sessions`. A TTL index on `expires_at` (`expireAfterSeconds:
//! 0`) is created on first use, idempotently, so the server removes expired documents by
//! itself; its monitor runs only every 60 s, so every read also filters on `expires_at`.
//!
//! A session bound to a user (by a login) also has `user: "<prefix>user:<digest>"`, its
//! [`UserKey`]; a sparse index on `user`, created with the TTL index, serves
//! [`Store::list_bound`]. The binding is part of the session's document, so it exists
//! exactly when the session does and goes with it, expiry included.
//!
//! `rev` is the record's [`Revision`]: 1 on `create`, one more on each `update`, unchanged
//! by `touch`. A document whose `data` is not binary, or without a `rev` that is a non-zero
//! integer, is not one this store wrote and reads as absent.
//!
//! # Operations
//! `live` below is `{_id, expires_at: {$gt: now}}`, and `at rev` adds `rev: <revision>`.
//!
//! | operation | call | checked |
//! |---|---|---|
//! | `load` | `find_one live` | none = absent |
//! | `create` | `insert_one` with `rev: 1` | duplicate key (11000) = `DuplicateId`, unless the holder has expired (then `replace_one {_id, expires_at <= now}`) |
//! | `update` | `update_one live at rev`, `$set` data, expiry and `rev: <revision + 1>`, no upsert | matched 0: `find_one live`, none = `UnknownId`, else `Conflict` with that document |
//! | `touch` | `update_one live`, `$set` expiry | matched 0 = `UnknownId` |
//! | `delete` | `delete_one {_id}` | |
//! | `delete_if_unchanged` | `delete_one live at rev` | deleted 0: as `update` |
//! | `delete_expired` | batches of `delete_many {_id in [...]}` | for deployments without the index |
//! | `create_bound` | `create` with `user` set | as `create` |
//! | `unbind` | `update_one {_id, user}`, `$unset` user | none matched is fine |
//! | `list_bound` | `find {user, expires_at: {$gt: now}}` | |
//! | `count` | `count_documents` under the prefix, live | |
//! | `scan` | `find` under the prefix, live, `_id > after`, sorted by `_id`, `limit` | a full page's last `_id` is the cursor |
//!
//! "Under the prefix" is `_id: {$gte: prefix, $lt: <prefix with its last character
//! incremented>}`, a range the `_id` index serves, narrowed by the anchored regex
//! `^<escaped prefix>[^:]+$` so that keys of a longer prefix (`session:other:...`) are not
//! counted, as [`is_session_key`](session_core::store::is_session_key) says. A scan reads
//! without touching, and a session that lives through a whole scan is listed once, since
//! pages follow the order of `_id`.
//!
//! A conflict-free `update` or `delete_if_unchanged` is one round trip; only a write that
//! matched nothing reads the document back, to tell a gone session from a changed one.
//! `update` and `touch` use `$set` rather than `replace_one` so the document keeps its
//! `created_at` and `user`; only `create`'s take-over of an expired document replaces it,
//! and the new session is bound only if it was made by `create_bound`.
//! `load_and_touch` is `load` then `touch`. Times are the application's clock, in
//! milliseconds.
//!
//! # A server that is down or does not answer
//! The store's timeout ([`MongoStoreBuilder::timeout`], 2 s by default) bounds each round
//! trip to the server: each call to the driver, selecting a server and connecting
//! included. One that takes longer fails with `StoreError::Unavailable` (answered with
//! 503 by the middleware). A call that needs two round trips (`create`'s insert then
//! take-over, an `update` or `delete_if_unchanged` that matched nothing then the read
//! that explains why, `load_and_touch`) may take up to two timeouts, and
//! `delete_expired` up to three per batch (find the ids, read them, delete); `list_bound`
//! and `scan` are two bounded calls (the find, then reading its cursor to the end).
//! Creating the indexes at start is bounded too.
//! The driver bounds selecting a server and connecting, but would wait without end for
//! the answer of a server that took a request and stopped answering (a frozen process,
//! whose system keeps its connections open), so the store bounds each call itself. A
//! call given up on may still be applied by the server later, as with any answer that
//! was lost. The driver reconnects by itself, so the store works again as soon as the
//! server does.

use std::future::{Future, IntoFuture};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, DateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{
    ClientOptions, CollectionOptions, IndexOptions, ReadPreference, SelectionCriteria,
};
use mongodb::{Client, Collection, IndexModel};
use session_core::store::time::{from_unix_millis_i64, unix_millis_i64};
use session_core::store::{
    Listed, Loaded, Revision, ScanCursor, ScanPage, Store, StoreError, StoreKey, UserKey,
};

const BACKEND: &str = "mongodb";

/// MongoDB's duplicate key error code.
const DUPLICATE_KEY: i32 = 11000;

/// The field holding a document's revision.
const REV: &str = "rev";

/// The field holding the [`UserKey`] a session is bound to, absent on unbound sessions.
const USER: &str = "user";

/// Documents removed per `delete_many` by [`Store::delete_expired`].
const DELETE_BATCH: i64 = 5_000;

/// The name of the index on [`USER`].
const USER_INDEX: &str = "user";

/// The database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "sessions";

/// The default collection.
pub const DEFAULT_COLLECTION: &str = "sessions";

/// Sessions in a MongoDB collection. Cloning is cheap and shares the client.
#[derive(Clone, Debug)]
pub struct MongoStore {
    collection: Collection<Document>,
    /// How long one call to the server may take.
    timeout: Duration,
}

/// Configures a [`MongoStore`]: made by [`MongoStore::builder`] from a URL or by
/// [`MongoStore::from_client`] from a client, and finished by
/// [`connect`](MongoStoreBuilder::connect).
#[derive(Clone)]
#[must_use]
pub struct MongoStoreBuilder {
    source: Source,
    database: Option<String>,
    collection: String,
    timeout: Duration,
}

/// Where a builder's store finds MongoDB.
#[derive(Clone)]
enum Source {
    Url(String),
    Client(Client),
}

/// The URL can carry a password, and the client its options: neither is shown.
impl std::fmt::Debug for MongoStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.source {
            Source::Url(_) => "a URL",
            Source::Client(_) => "a mongodb::Client",
        };
        f.debug_struct("MongoStoreBuilder")
            .field("source", &source)
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl MongoStoreBuilder {
    /// The database the sessions live in.
    ///
    /// # Default
    /// The one the URL names (`mongodb://host/app`), or the client's default database;
    /// else [`DEFAULT_DATABASE`], `sessions`.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The collection the sessions live in.
    ///
    /// # Default
    /// [`DEFAULT_COLLECTION`], `sessions`.
    pub fn collection(mut self, collection: impl Into<String>) -> Self {
        self.collection = collection.into();
        self
    }

    /// How long a call to the server may take, selecting a server and connecting
    /// included, before it fails with `StoreError::Unavailable`. It bounds each round trip
    /// of a call (a call of two round trips may take two timeouts) and the creation of the
    /// indexes, for a store made [`from_client`](MongoStore::from_client) too.
    ///
    /// # Default
    /// 2 s: the driver alone would take 30 s to give up on selecting a server, and never
    /// on an answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects (for a URL) and creates the TTL index and the index on `user`.
    ///
    /// # Errors
    /// `StoreError::Backend` for a URL the driver cannot parse or a server that refuses an
    /// index, `StoreError::Unavailable` if the server cannot be reached within the timeout.
    pub async fn connect(self) -> Result<MongoStore, StoreError> {
        let client = match self.source {
            Source::Url(url) => {
                let mut options = ClientOptions::parse(url).await.map_err(failed)?;
                options.server_selection_timeout = Some(self.timeout);
                options.connect_timeout = Some(self.timeout);
                options
                    .app_name
                    .get_or_insert_with(|| "session-mongodb".to_owned());
                Client::with_options(options).map_err(failed)?
            }
            Source::Client(client) => client,
        };
        let database = match self.database {
            Some(database) => client.database(&database),
            None => client
                .default_database()
                .unwrap_or_else(|| client.database(DEFAULT_DATABASE)),
        };
        // Sessions are read from the primary whatever the client's default, so that a
        // logout or a login is seen by the very next request.
        let primary = CollectionOptions::builder()
            .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
            .build();
        let collection = database.collection_with_options::<Document>(&self.collection, primary);
        let ttl_index = IndexModel::builder()
            .keys(doc! { "expires_at": 1 })
            .options(
                IndexOptions::builder()
                    .name("expires_at_ttl".to_owned())
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build();
        // Sparse: only bound sessions carry `user`, and only they are looked up by it.
        let user_index = IndexModel::builder()
            .keys(doc! { USER: 1 })
            .options(
                IndexOptions::builder()
                    .name(USER_INDEX.to_owned())
                    .sparse(true)
                    .build(),
            )
            .build();
        let store = MongoStore {
            collection,
            timeout: self.timeout,
        };
        store
            .call(store.collection.create_indexes([ttl_index, user_index]))
            .await?;
        Ok(store)
    }
}

impl MongoStore {
    /// Connects to `url` with the default settings.
    ///
    /// # Errors
    /// As [`MongoStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A builder for a store at `url`, finished by [`connect`](MongoStoreBuilder::connect).
    pub fn builder(url: impl Into<String>) -> MongoStoreBuilder {
        Self::with_source(Source::Url(url.into()))
    }

    /// A builder for a store on a client the application already has, finished by
    /// [`connect`](MongoStoreBuilder::connect). The client's own settings apply (its
    /// server selection and connect timeouts included), the store's timeout on top.
    pub fn from_client(client: Client) -> MongoStoreBuilder {
        Self::with_source(Source::Client(client))
    }

    fn with_source(source: Source) -> MongoStoreBuilder {
        MongoStoreBuilder {
            source,
            database: None,
            collection: DEFAULT_COLLECTION.to_owned(),
            timeout: Duration::from_secs(2),
        }
    }

    /// The driver's answer to `call`, or `Unavailable` once it has taken the timeout.
    ///
    /// Not an `async fn`: the call is turned into its (boxed) future here, so that the
    /// future this returns holds that and the timer, not the call's arguments and options,
    /// which would make every operation's future larger than the allocator's fast path.
    fn within<F: IntoFuture>(
        &self,
        call: F,
    ) -> impl Future<Output = Result<F::Output, StoreError>> + use<'_, F> {
        let timeout = tokio::time::timeout(self.timeout, call);
        async move {
            timeout
                .await
                .map_err(|_| StoreError::unavailable(BACKEND, TimedOut(self.timeout)))
        }
    }

    /// The result of `call`, within the timeout, its error classified.
    fn call<T, F>(&self, call: F) -> impl Future<Output = Result<T, StoreError>> + use<'_, T, F>
    where
        F: IntoFuture<Output = mongodb::error::Result<T>>,
    {
        let within = self.within(call);
        async move { within.await?.map_err(failed) }
    }

    /// Why a conditional write under `key` matched nothing: `Conflict` with the live
    /// document if there is one, else `UnknownId`.
    async fn miss(&self, key: &StoreKey) -> StoreError {
        match self.load(key).await {
            Ok(Some(current)) => StoreError::conflict_with(current),
            Ok(None) => StoreError::UnknownId,
            Err(error) => error,
        }
    }

    /// `create`, with the document bound to `user` when there is one: the `user` field is
    /// part of the one document written, so the binding exists exactly when the record does.
    async fn insert(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: DateTime,
        user: Option<&UserKey>,
    ) -> Result<Revision, StoreError> {
        let now = date(SystemTime::now());
        // The document is built again for a take-over rather than cloned: a copy kept
        // across the insert would make the future larger than the allocator's fast path.
        match self
            .within(
                self.collection
                    .insert_one(new_document(key, value, at, now, user)),
            )
            .await?
        {
            Ok(_) => Ok(Revision::FIRST),
            Err(error) if is_duplicate_key(&error) => {
                // Only an expired holder may be replaced; a live one is never overwritten.
                // The replacement drops the holder's `user`: a new record is bound afresh.
                let expired = doc! { "_id": key.as_str(), "expires_at": { "$lte": now } };
                let replaced = self
                    .call(
                        self.collection
                            .replace_one(expired, new_document(key, value, at, now, user)),
                    )
                    .await?;
                if replaced.matched_count == 1 {
                    Ok(Revision::FIRST)
                } else {
                    Err(StoreError::DuplicateId)
                }
            }
            Err(error) => Err(failed(error)),
        }
    }

    /// The live documents matching `filter`, sorted by `_id` and at most `limit` of them
    /// when given, read in full, with the number of documents the server returned (some
    /// may not be records this store wrote, and are left out of the records).
    async fn listed(
        &self,
        filter: Document,
        limit: Option<i64>,
    ) -> Result<(Vec<Listed>, Option<String>, usize), StoreError> {
        let mut find = self
            .collection
            .find(filter)
            .projection(doc! { "_id": 1, "data": 1, "expires_at": 1, REV: 1 });
        if let Some(limit) = limit {
            find = find.sort(doc! { "_id": 1 }).limit(limit);
        }
        let cursor = self.call(find).await?;
        // Boxed: a cursor held in the future would make it larger than the allocator's fast
        // path, and listing is rare enough for one more allocation.
        let documents: Vec<Document> = self.call(Box::pin(cursor.try_collect())).await?;
        let found = documents.len();
        let last = documents
            .last()
            .and_then(|d| d.get_str("_id").ok())
            .map(str::to_owned);
        let records = documents.iter().filter_map(listed).collect();
        Ok((records, last, found))
    }

    /// The collection the sessions live in.
    pub fn collection(&self) -> &Collection<Document> {
        &self.collection
    }
}

/// A call that took longer than the store's timeout.
#[derive(Debug)]
struct TimedOut(Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MongoDB did not answer within {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// A MongoDB failure without its message where that message can quote the document (a
/// duplicate key error names the `_id`, which holds the session id; ids must never reach
/// a log).
#[derive(Debug)]
struct Failure {
    kind: &'static str,
    code: Option<i32>,
    source: Option<mongodb::error::Error>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "MongoDB {} (code {code})", self.kind),
            None => write!(f, "MongoDB {}", self.kind),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

fn failed(error: mongodb::error::Error) -> StoreError {
    let failure = |kind, code, source| Failure { kind, code, source };
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => {
            StoreError::backend(BACKEND, failure("write error", Some(e.code), None))
        }
        ErrorKind::Write(_) => {
            StoreError::backend(BACKEND, failure("write concern error", None, None))
        }
        ErrorKind::Command(e) => {
            StoreError::backend(BACKEND, failure("command error", Some(e.code), None))
        }
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::Shutdown => {
            StoreError::unavailable(BACKEND, failure("connection error", None, Some(error)))
        }
        _ => StoreError::backend(BACKEND, failure("error", None, Some(error))),
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    matches!(&*error.kind, ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY)
}

fn date(time: SystemTime) -> DateTime {
    DateTime::from_millis(unix_millis_i64(time))
}

fn binary(value: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: value.to_vec(),
    }
}

/// `{_id: key, expires_at: {$gt: now}}`: the live session under `key`.
fn live(key: &StoreKey, now: DateTime) -> Document {
    doc! { "_id": key.as_str(), "expires_at": { "$gt": now } }
}

/// The live session under `key` if it is still at `revision`.
fn live_at(key: &StoreKey, now: DateTime, revision: Revision) -> Document {
    let mut filter = live(key, now);
    filter.insert(REV, stored(revision));
    filter
}

/// A revision as stored: the Int64 with the same bits, so every `u64` round-trips.
fn stored(revision: Revision) -> i64 {
    revision.get() as i64
}

/// The revision of `document`, or `None` without a `rev` field that this store could have
/// written (a non-zero integer).
fn revision_of(document: &Document) -> Option<Revision> {
    let number = match document.get(REV)? {
        Bson::Int64(n) => *n,
        Bson::Int32(n) => i64::from(*n),
        _ => return None,
    };
    (number != 0).then(|| Revision::new(number as u64))
}

/// The record in `document`, or `None` if it is not a document this store wrote (treated
/// as absent, like undecodable data).
fn loaded(document: &Document) -> Option<Loaded> {
    let Some(Bson::Binary(data)) = document.get("data") else {
        return None;
    };
    let loaded = Loaded::new(data.bytes.clone(), revision_of(document)?);
    Some(match document.get_datetime("expires_at") {
        Ok(at) => loaded.with_expiry(from_unix_millis_i64(at.timestamp_millis())),
        Err(_) => loaded,
    })
}

/// A new session's document, bound to `user` if there is one.
fn new_document(
    key: &StoreKey,
    value: &[u8],
    at: DateTime,
    now: DateTime,
    user: Option<&UserKey>,
) -> Document {
    let mut document = doc! {
        "_id": key.as_str(),
        "data": binary(value),
        "expires_at": at,
        "created_at": now,
        REV: stored(Revision::FIRST),
    };
    if let Some(user) = user {
        document.insert(USER, user.as_str());
    }
    document
}

/// `document` as a listed record, or `None` if it is not a document this store wrote.
fn listed(document: &Document) -> Option<Listed> {
    let id = document.get_str("_id").ok()?;
    let Some(Bson::Binary(data)) = document.get("data") else {
        return None;
    };
    revision_of(document)?;
    let expires_at = document.get_datetime("expires_at").ok()?;
    Some(Listed::new(
        StoreKey::from_stored(id),
        data.bytes.clone(),
        from_unix_millis_i64(expires_at.timestamp_millis()),
    ))
}

/// The live sessions whose `_id` starts with `prefix` and holds no `:` after it, as
/// [`is_session_key`](session_core::store::is_session_key) says: a range on `_id`, which
/// the `_id` index serves, narrowed by an anchored regex.
fn under(prefix: &str, after: Option<&ScanCursor>, now: DateTime) -> Document {
    let mut id = doc! { "$gte": prefix };
    if let Some(end) = successor(prefix) {
        id.insert("$lt", end);
    }
    if let Some(after) = after {
        id.insert("$gt", after.as_str());
    }
    id.insert("$regex", format!("^{}[^:]+$", escaped(prefix)));
    doc! { "_id": id, "expires_at": { "$gt": now } }
}

/// The least string greater than every string that starts with `prefix`, or `None` if
/// there is none (an empty prefix). Strings compare by their UTF-8 bytes, which is the
/// order of their code points.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// `text` as a regex that matches it literally: ASCII punctuation is escaped, which both
/// MongoDB's PCRE and other servers' regex engines read as the character itself.
fn escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii_punctuation() || c == ' ' {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[async_trait]
impl Store for MongoStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Loaded>, StoreError> {
        let now = date(SystemTime::now());
        let document = self.call(self.collection.find_one(live(key, now))).await?;
        Ok(document.as_ref().and_then(loaded))
    }

    async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
    ) -> Result<Revision, StoreError> {
        self.insert(key, value, date(at), None).await
    }

    async fn update(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        revision: Revision,
    ) -> Result<Revision, StoreError> {
        let now = date(SystemTime::now());
        let next = revision.next();
        let set = doc! { "data": binary(value), "expires_at": date(at), REV: stored(next) };
        let update = self
            .collection
            .update_one(live_at(key, now, revision), doc! { "$set": set });
        let result = self.call(update).await?;
        if result.matched_count == 1 {
            Ok(next)
        } else {
            Err(self.miss(key).await)
        }
    }

    async fn touch(&self, key: &StoreKey, at: SystemTime) -> Result<(), StoreError> {
        let now = date(SystemTime::now());
        let touch = self
            .collection
            .update_one(live(key, now), doc! { "$set": { "expires_at": date(at) } });
        let result = self.call(touch).await?;
        if result.matched_count == 1 {
            Ok(())
        } else {
            Err(StoreError::UnknownId)
        }
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        self.call(self.collection.delete_one(doc! { "_id": key.as_str() }))
            .await
            .map(drop)
    }

    async fn delete_if_unchanged(
        &self,
        key: &StoreKey,
        revision: Revision,
    ) -> Result<(), StoreError> {
        let now = date(SystemTime::now());
        let result = self
            .call(self.collection.delete_one(live_at(key, now, revision)))
            .await?;
        if result.deleted_count == 1 {
            Ok(())
        } else {
            Err(self.miss(key).await)
        }
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = date(SystemTime::now());
        let mut removed = 0;
        loop {
            let find = self
                .collection
                .find(doc! { "expires_at": { "$lte": now } })
                .projection(doc! { "_id": 1 })
                .limit(DELETE_BATCH);
            let cursor = self.call(find).await?;
            let ids: Vec<Bson> = self
                .call(cursor.try_collect::<Vec<Document>>())
                .await?
                .into_iter()
                .filter_map(|mut d| d.remove("_id"))
                .collect();
            let found = ids.len();
            if found == 0 {
                return Ok(removed);
            }
            let delete = self
                .collection
                .delete_many(doc! { "_id": { "$in": ids }, "expires_at": { "$lte": now } });
            let deleted = self.call(delete).await?;
            removed += deleted.deleted_count;
            if found < DELETE_BATCH as usize {
                return Ok(removed);
            }
        }
    }

    async fn create_bound(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        self.insert(key, value, date(at), Some(user)).await
    }

    async fn unbind(&self, user: &UserKey, key: &StoreKey) -> Result<(), StoreError> {
        let filter = doc! { "_id": key.as_str(), USER: user.as_str() };
        let unset = doc! { "$unset": { USER: "" } };
        self.call(self.collection.update_one(filter, unset))
            .await
            .map(drop)
    }

    async fn list_bound(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        let now = date(SystemTime::now());
        let filter = doc! { USER: user.as_str(), "expires_at": { "$gt": now } };
        let (records, _, _) = self.listed(filter, None).await?;
        Ok(records)
    }

    async fn count(&self, prefix: &str) -> Result<u64, StoreError> {
        let now = date(SystemTime::now());
        self.call(self.collection.count_documents(under(prefix, None, now)))
            .await
    }

    async fn scan(
        &self,
        prefix: &str,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let now = date(SystemTime::now());
        // A limit of 0 means none to MongoDB.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX).max(1);
        let (records, last, found) = self.listed(under(prefix, after, now), Some(limit)).await?;
        let next = if found as i64 == limit {
            last.map(ScanCursor::new)
        } else {
            None
        };
        Ok(ScanPage { records, next })
    }
}

/// The code in this crate's README compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

//! Users' indexes and listings: a Redis set of session keys per user, and `SCAN` to count
//! or page through every session under a prefix (see the crate docs).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures_util::future::try_join_all;
use redis::cluster_routing::Slot;
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult, Value};
use session_core::store::{
    is_session_key, Listed, Revision, ScanCursor, ScanPage, StoreError, StoreKey, UserKey,
};

use crate::target::Target;
use crate::{create, is_wrong_type, unframe, RedisStore, BACKEND};

/// How many keys a `SCAN` step of `count` looks at, at most, unless a page asks for more.
const SCAN_COUNT: usize = 1000;

/// How many keys the first `SCAN` step of a page looks at, at least (Redis's own default).
const MIN_SCAN_COUNT: usize = 10;

/// A cursor that this store did not hand out, or one of a single server given to a
/// cluster's store (or the other way round).
#[derive(Debug, thiserror::Error)]
#[error("not a scan cursor of this Redis store")]
struct InvalidCursor;

/// A `CLUSTER SLOTS` reply of an unexpected shape.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from Redis to CLUSTER SLOTS")]
struct UnexpectedSlots;

/// Where a scan is: the node it is on (on a cluster, the lowest slot of a master; `None` on
/// a single server) and Redis's cursor there.
#[derive(Clone, Copy)]
struct Position {
    node: Option<u16>,
    cursor: u64,
}

impl Position {
    /// The cursor as text: `<cursor>` on a single server, `<slot>:<cursor>` on a cluster.
    fn to_cursor(self) -> ScanCursor {
        match self.node {
            None => ScanCursor::new(self.cursor.to_string()),
            Some(slot) => ScanCursor::new(format!("{slot}:{}", self.cursor)),
        }
    }

    fn parse(cursor: &ScanCursor, cluster: bool) -> Result<Self, StoreError> {
        let text = cursor.as_str();
        let position = if cluster {
            text.split_once(':').and_then(|(slot, cursor)| {
                let slot = slot
                    .parse()
                    .ok()
                    .filter(|&slot| Slot::new(slot).is_some())?;
                Some(Self {
                    node: Some(slot),
                    cursor: cursor.parse().ok()?,
                })
            })
        } else {
            text.parse().ok().map(|cursor| Self { node: None, cursor })
        };
        position.ok_or_else(|| StoreError::backend(BACKEND, InvalidCursor))
    }
}

/// What a key holds, read without touching it.
enum Found {
    /// A live record of this store.
    Live(Listed),
    /// Nothing: deleted or expired.
    Gone(String),
    /// A value this store did not write (no revision in front, no expiry, not a string):
    /// not a session, and left alone.
    Other,
}

impl Found {
    fn live(self) -> Option<Listed> {
        match self {
            Self::Live(listed) => Some(listed),
            Self::Gone(_) | Self::Other => None,
        }
    }
}

/// `name user key`: a command on a user's index.
fn index_command(name: &str, user: &UserKey, key: &StoreKey) -> Cmd {
    let bytes = name.len() + user.as_str().len() + key.as_str().len();
    let mut command = Cmd::with_capacity(3, bytes);
    command.arg(name).arg(user.as_str()).arg(key.as_str());
    command
}

/// `GET key` and `PTTL key` for each key: its value and remaining lifetime, untouched. A
/// `GET` refused is answered in its place, so that a key of another type spoils no other.
fn value_and_ttl(keys: &[String]) -> Pipeline {
    let mut pipeline = Pipeline::with_capacity(2 * keys.len());
    pipeline.ignore_errors();
    for key in keys {
        pipeline.cmd("GET").arg(key).cmd("PTTL").arg(key);
    }
    pipeline
}

/// A reply to `GET` and `PTTL`, read at `now`.
fn found(key: String, value: Option<Vec<u8>>, ttl: i64, now: SystemTime) -> Found {
    match (value, ttl) {
        // PTTL -2: expired between the two reads.
        (None, _) | (Some(_), -2) => Found::Gone(key),
        (Some(value), ttl) if ttl > 0 => match unframe(value) {
            Some(loaded) => {
                let expires_at = now + Duration::from_millis(ttl.unsigned_abs());
                Found::Live(Listed::new(
                    StoreKey::from_stored(key),
                    loaded.into_value(),
                    expires_at,
                ))
            }
            None => Found::Other,
        },
        // PTTL -1: a key without expiry, which this store never writes.
        (Some(_), _) => Found::Other,
    }
}

/// The `SCAN` pattern of the keys that start with `prefix`, its glob characters escaped.
fn pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// The session keys among the keys a `SCAN` under `prefix` found; users' indexes and keys
/// that are not text are not sessions.
fn session_keys(prefix: &str, keys: Vec<Vec<u8>>) -> impl Iterator<Item = String> + '_ {
    keys.into_iter()
        .filter_map(|key| String::from_utf8(key).ok())
        .filter(move |key| is_session_key(prefix, key))
}

/// The nodes a cluster-wide scan visits, in order, from a `CLUSTER SLOTS` reply: the
/// lowest slot of each master, ascending.
fn masters(reply: Value) -> Option<Vec<Option<u16>>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut lowest: BTreeMap<(Vec<u8>, i64), u16> = BTreeMap::new();
    for range in ranges {
        let Value::Array(range) = range else {
            return None;
        };
        let (Some(Value::Int(start)), Some(Value::Array(master))) = (range.first(), range.get(2))
        else {
            return None;
        };
        let (Some(host), Some(Value::Int(port))) = (master.first(), master.get(1)) else {
            return None;
        };
        let host = Vec::<u8>::from_redis_value_ref(host).ok()?;
        let start = u16::try_from(*start)
            .ok()
            .filter(|&start| Slot::new(start).is_some())?;
        lowest
            .entry((host, *port))
            .and_modify(|slot| *slot = (*slot).min(start))
            .or_insert(start);
    }
    let mut nodes: Vec<Option<u16>> = lowest.into_values().map(Some).collect();
    nodes.sort_unstable();
    Some(nodes)
}

impl RedisStore {
    fn is_cluster(&self) -> bool {
        matches!(self.inner.target, Target::Cluster(_))
    }

    /// Sends a pipeline on this thread's connection.
    async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipeline: &Pipeline,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection().await?;
        connection
            .query_pipeline(pipeline)
            .await
            .map_err(|e| self.failed(e))
    }

    /// `SADD` of the index entry, then `SET NX` of the record: in one transaction on a
    /// single server; on a cluster, where the two keys have different slots, as two
    /// commands, and once the record is created a second `SADD` of the entry, which a
    /// listing may have pruned in between (see [`Self::bound_records`]).
    /// When the record is refused (`DuplicateId`), an entry that this call added is taken
    /// out again with `SREM`: the record there is not this user's.
    pub(crate) async fn create_and_bind(
        &self,
        key: &StoreKey,
        value: &[u8],
        at: SystemTime,
        user: &UserKey,
    ) -> Result<Revision, StoreError> {
        let add = index_command("SADD", user, key);
        let (added, created): (i64, Option<()>) = if self.is_cluster() {
            // The entry first, so that it exists no later than the record.
            let added = self.query(&add).await?;
            let created: Option<()> = self.query(&create(key, value, at)).await?;
            if created.is_some() {
                self.query::<i64>(&add).await?;
            }
            (added, created)
        } else {
            // Atomic, so that a listing never meets the entry before its record exists and
            // prunes it.
            let mut pipeline = Pipeline::with_capacity(2);
            pipeline
                .atomic()
                .add_command(add)
                .add_command(create(key, value, at));
            self.query_pipeline(&pipeline).await?
        };
        match created {
            Some(()) => Ok(Revision::FIRST),
            None => {
                if added == 1 {
                    self.remove_binding(user, key).await?;
                }
                Err(StoreError::DuplicateId)
            }
        }
    }

    /// `SREM user key`.
    pub(crate) async fn remove_binding(
        &self,
        user: &UserKey,
        key: &StoreKey,
    ) -> Result<(), StoreError> {
        self.query::<i64>(&index_command("SREM", user, key))
            .await
            .map(drop)
    }

    /// `SMEMBERS`, then each member's value and TTL; members whose key is gone are removed
    /// with one `SREM`, and on a cluster those keys are checked again and any that exists
    /// now is put back.
    ///
    /// On a cluster both sides look again after their own write, so a listing between a
    /// `create_bound`'s `SADD` and `SET` never loses the entry: if the create's second
    /// `SADD` runs after this `SREM` it puts the entry back, and if it runs before, the
    /// record existed before this `SREM`, so the `EXISTS` sent after it finds the record.
    /// A single server needs no second look: there the entry and the record are created in
    /// one transaction, and a key once gone is never created again.
    pub(crate) async fn bound_records(&self, user: &UserKey) -> Result<Vec<Listed>, StoreError> {
        let mut members = Cmd::with_capacity(2, "SMEMBERS".len() + user.as_str().len());
        members.arg("SMEMBERS").arg(user.as_str());
        let members: Vec<Vec<u8>> = self.query(&members).await?;
        // A member that is not text was not written by this store and names no session.
        let keys = members
            .into_iter()
            .filter_map(|member| String::from_utf8(member).ok())
            .collect();
        let mut listed = Vec::new();
        let mut gone = Vec::new();
        for found in self.read(keys).await? {
            match found {
                Found::Live(record) => listed.push(record),
                Found::Gone(key) => gone.push(key),
                Found::Other => {}
            }
        }
        if !gone.is_empty() {
            let mut prune = redis::cmd("SREM");
            prune.arg(user.as_str()).arg(&gone);
            self.query::<i64>(&prune).await?;
            if self.is_cluster() {
                self.restore_created(user, gone).await?;
            }
        }
        Ok(listed)
    }

    /// On a cluster, `EXISTS` of each of the keys just pruned from `user`'s index, one
    /// command per key (their slots differ), sent together; then one `SADD` of those that
    /// exist now: records created since they were read.
    async fn restore_created(&self, user: &UserKey, pruned: Vec<String>) -> Result<(), StoreError> {
        let connection = self.connection().await?;
        let checks = pruned.iter().map(|key| {
            let mut connection = connection.clone();
            let mut exists = Cmd::with_capacity(2, "EXISTS".len() + key.len());
            exists.arg("EXISTS").arg(key);
            async move { connection.query::<i64>(&exists).await }
        });
        let exists = try_join_all(checks).await.map_err(|e| self.failed(e))?;
        let created: Vec<String> = pruned
            .into_iter()
            .zip(exists)
            .filter_map(|(key, exists)| (exists > 0).then_some(key))
            .collect();
        if !created.is_empty() {
            let mut add = redis::cmd("SADD");
            add.arg(user.as_str()).arg(&created);
            self.query::<i64>(&add).await?;
        }
        Ok(())
    }

    /// What each of `keys` holds, read without touching: one pipeline on a single server;
    /// on a cluster, where keys have different slots, one pipeline per key, sent together.
    async fn read(&self, keys: Vec<String>) -> Result<Vec<Found>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let replies: Vec<(RedisResult<Option<Vec<u8>>>, i64)> = if self.is_cluster() {
            let connection = self.connection().await?;
            let reads = keys.iter().map(|key| {
                let mut connection = connection.clone();
                let pipeline = value_and_ttl(std::slice::from_ref(key));
                async move { connection.query_pipeline(&pipeline).await }
            });
            try_join_all(reads).await.map_err(|e| self.failed(e))?
        } else {
            self.query_pipeline(&value_and_ttl(&keys)).await?
        };
        let now = SystemTime::now();
        keys.into_iter()
            .zip(replies)
            .map(|(key, (value, ttl))| match value {
                Ok(value) => Ok(found(key, value, ttl, now)),
                Err(error) if is_wrong_type(&error) => Ok(Found::Other),
                Err(error) => Err(self.failed(error)),
            })
            .collect()
    }

    /// The nodes a scan visits, in order: the server, or each master of a cluster (one
    /// `CLUSTER SLOTS`).
    async fn nodes(&self) -> Result<Vec<Option<u16>>, StoreError> {
        if !self.is_cluster() {
            return Ok(vec![None]);
        }
        let mut command = Cmd::with_capacity(2, "CLUSTERSLOTS".len());
        command.arg("CLUSTER").arg("SLOTS");
        let reply = self.query_on(command, None).await?;
        masters(reply).ok_or_else(|| StoreError::backend(BACKEND, UnexpectedSlots))
    }

    /// A keyless command: to the server, or to the master serving `slot` (any node for
    /// `None`) on a cluster.
    async fn query_on<T: FromRedisValue>(
        &self,
        command: Cmd,
        slot: Option<u16>,
    ) -> Result<T, StoreError> {
        let slot = match slot {
            Some(slot) => {
                Some(Slot::new(slot).ok_or_else(|| StoreError::backend(BACKEND, InvalidCursor))?)
            }
            None => None,
        };
        let mut connection = self.connection().await?;
        connection
            .query_on(command, slot)
            .await
            .map_err(|e| self.failed(e))
    }

    /// One `SCAN <cursor> MATCH <pattern> COUNT <count>` where `at` says: the next cursor
    /// (0 at the end of that node) and the keys found.
    async fn scan_step(
        &self,
        at: Position,
        pattern: &str,
        count: usize,
    ) -> Result<(u64, Vec<Vec<u8>>), StoreError> {
        let mut command = Cmd::with_capacity(6, "SCANMATCHCOUNT".len() + pattern.len() + 40);
        command
            .arg("SCAN")
            .arg(at.cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        match at.node {
            None => self.query(&command).await,
            Some(slot) => self.query_on(command, Some(slot)).await,
        }
    }

    /// `SCAN` through every node, counting session keys.
    pub(crate) async fn count_sessions(&self, prefix: &str) -> Result<u64, StoreError> {
        let pattern = pattern(prefix);
        let mut count = 0u64;
        for node in self.nodes().await? {
            let mut at = Position { node, cursor: 0 };
            loop {
                let (cursor, keys) = self.scan_step(at, &pattern, SCAN_COUNT).await?;
                count += session_keys(prefix, keys).count() as u64;
                if cursor == 0 {
                    break;
                }
                at.cursor = cursor;
            }
        }
        Ok(count)
    }

    /// `SCAN` steps from `after` until `limit` session keys are found or every node is
    /// done, each step looking at twice as many keys as the one before (up to
    /// [`SCAN_COUNT`]), so that a sparse prefix takes few round trips and a dense one does
    /// not overshoot `limit` by much; then the keys' values and TTLs.
    pub(crate) async fn scan_page(
        &self,
        prefix: &str,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let nodes = self.nodes().await?;
        let mut at = match after {
            Some(after) => Position::parse(after, self.is_cluster())?,
            None => match nodes.first() {
                Some(&node) => Position { node, cursor: 0 },
                None => return Ok(ScanPage::default()),
            },
        };
        let pattern = pattern(prefix);
        let limit = limit.max(1);
        let most = limit.max(SCAN_COUNT);
        let mut count = limit.clamp(MIN_SCAN_COUNT, most);
        let mut keys = Vec::new();
        let next = loop {
            let (cursor, found) = self.scan_step(at, &pattern, count).await?;
            keys.extend(session_keys(prefix, found));
            // SCAN may return a key twice; a page lists it once.
            keys.sort_unstable();
            keys.dedup();
            let next = if cursor == 0 {
                // The next master: the one whose lowest slot follows this one's.
                let node = nodes.iter().copied().find(|&node| node > at.node);
                node.map(|node| Position { node, cursor: 0 })
            } else {
                Some(Position {
                    node: at.node,
                    cursor,
                })
            };
            match next {
                Some(next) if keys.len() < limit => {
                    at = next;
                    count = (count * 2).min(most);
                }
                next => break next,
            }
        };
        let records = self
            .read(keys)
            .await?
            .into_iter()
            .filter_map(Found::live)
            .collect();
        Ok(ScanPage {
            records,
            next: next.map(Position::to_cursor),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_of_a_prefix_are_escaped() {
        assert_eq!(pattern("session:"), "session:*");
        assert_eq!(pattern(r"a*b?c[d]e\f:"), r"a\*b\?c\[d\]e\\f:*");
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let single = Position {
            node: None,
            cursor: 1234,
        };
        let parsed = Position::parse(&single.to_cursor(), false).unwrap();
        assert_eq!((parsed.node, parsed.cursor), (None, 1234));
        let cluster = Position {
            node: Some(5461),
            cursor: 7,
        };
        let parsed = Position::parse(&cluster.to_cursor(), true).unwrap();
        assert_eq!((parsed.node, parsed.cursor), (Some(5461), 7));
        for (text, cluster) in [
            ("5461:7", false),
            ("7", true),
            ("16384:0", true),
            ("x:1", true),
            ("", false),
            ("-1", false),
        ] {
            assert!(
                Position::parse(&ScanCursor::new(text), cluster).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn each_master_is_visited_once_from_its_lowest_slot() {
        let node = |port: i64| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |start: i64, end: i64, port: i64| {
            Value::Array(vec![Value::Int(start), Value::Int(end), node(port)])
        };
        let reply = Value::Array(vec![
            range(10923, 16383, 7002),
            range(5461, 10922, 7001),
            range(100, 5460, 7000),
            range(0, 99, 7001),
        ]);
        assert_eq!(masters(reply), Some(vec![Some(0), Some(100), Some(10923)]));
        assert_eq!(masters(Value::Array(vec![Value::Int(1)])), None);
    }

    #[test]
    fn only_live_records_of_this_store_are_listed() {
        let now = SystemTime::now();
        let framed = b"0000000000000001{}".to_vec();
        match found("k".into(), Some(framed.clone()), 1500, now) {
            Found::Live(listed) => {
                assert_eq!(listed.value(), b"{}");
                assert_eq!(listed.expires_at(), now + Duration::from_millis(1500));
            }
            _ => panic!("a live record is not listed"),
        }
        assert!(matches!(found("k".into(), None, -2, now), Found::Gone(_)));
        assert!(matches!(
            found("k".into(), Some(framed.clone()), -2, now),
            Found::Gone(_)
        ));
        assert!(matches!(
            found("k".into(), Some(framed), -1, now),
            Found::Other
        ));
        assert!(matches!(
            found("k".into(), Some(b"{}".to_vec()), 1500, now),
            Found::Other
        ));
    }
}

//! MongoDB: documents shaped as `MongoStore` writes them (`_id`, binary `data`,
//! `expires_at` and `created_at` dates, Int64 `rev`) in a collection of their own with the
//! same TTL index, read from the primary, through a client with the store's options.
//! `/read` is `find_one {_id, expires_at > now}`; `/incr` is that and `update_one` of the
//! same filter plus `rev`, `$set` of data, expiry and the next `rev`; `/new` is
//! `insert_one` with `rev: 1`.

use std::time::{Duration, SystemTime};

use actix_web::{web, HttpRequest, HttpResponse};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, DateTime, Document};
use mongodb::options::{
    ClientOptions, CollectionOptions, IndexOptions, ReadPreference, SelectionCriteria,
};
use mongodb::{Client, Collection, IndexModel};

use super::{
    counter, expires_at, failure, key, new_sid, sid, text, unix_millis, with_cookie, ATTEMPTS,
    TABLE,
};

/// `MongoStore`'s default timeout, which its client gets for selecting a server and for
/// connecting (unless the URL sets another).
const TIMEOUT: Duration = Duration::from_secs(2);

/// The database when the URL names none, as `MongoStore`'s default.
const DATABASE: &str = "sessions";

/// The baseline's collection, shared by the workers as the library's store shares its
/// client.
#[derive(Clone, Debug)]
pub struct Mongo(Collection<Document>);

impl Mongo {
    /// The collection at `url`, opened as `MongoStore` opens its own, with its TTL index.
    pub(super) async fn connect(url: &str, timeout: Option<Duration>) -> Result<Self, String> {
        let timeout = timeout.unwrap_or(TIMEOUT);
        let unreachable = |e: mongodb::error::Error| format!("cannot reach MongoDB: {e}");
        let mut options = ClientOptions::parse(url).await.map_err(unreachable)?;
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        options
            .app_name
            .get_or_insert_with(|| "bench-baseline".to_owned());
        let client = Client::with_options(options).map_err(unreachable)?;
        let database = client
            .default_database()
            .unwrap_or_else(|| client.database(DATABASE));
        let primary = CollectionOptions::builder()
            .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
            .build();
        let collection = database.collection_with_options::<Document>(TABLE, primary);
        let ttl_index = IndexModel::builder()
            .keys(doc! { "expires_at": 1 })
            .options(
                IndexOptions::builder()
                    .name("expires_at_ttl".to_owned())
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build();
        collection
            .create_index(ttl_index)
            .await
            .map_err(unreachable)?;
        Ok(Self(collection))
    }

    /// The routes, on this collection.
    pub(super) fn routes(&self, config: &mut web::ServiceConfig) {
        config
            .app_data(web::Data::new(self.0.clone()))
            .route("/read", web::get().to(read))
            .route("/incr", web::get().to(incr))
            .route("/new", web::get().to(new));
    }
}

type Sessions = web::Data<Collection<Document>>;

fn date(at: SystemTime) -> DateTime {
    DateTime::from_millis(unix_millis(at))
}

fn binary(value: i64) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: value.to_string().into_bytes(),
    }
}

/// `{_id: key, expires_at: {$gt: now}}`: the live session under `key`.
fn live(key: &str) -> Document {
    doc! { "_id": key, "expires_at": { "$gt": date(SystemTime::now()) } }
}

/// The live session's counter and revision, if it is there.
async fn load(sessions: &Sessions, key: &str) -> Result<Option<(i64, i64)>, ()> {
    let Some(document) = sessions.find_one(live(key)).await.map_err(drop)? else {
        return Ok(None);
    };
    let Some(Bson::Binary(data)) = document.get("data") else {
        return Ok(None);
    };
    let Some(Bson::Int64(revision)) = document.get("rev") else {
        return Ok(None);
    };
    Ok(Some((counter(&data.bytes), *revision)))
}

async fn read(req: HttpRequest, sessions: Sessions) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("0");
    };
    match load(&sessions, &key(&sid)).await {
        Ok(found) => text(found.map_or(0, |(value, _)| value).to_string()),
        Err(()) => failure(),
    }
}

async fn incr(req: HttpRequest, sessions: Sessions) -> HttpResponse {
    let Some(sid) = sid(&req) else {
        return text("1");
    };
    let key = key(&sid);
    for _ in 0..ATTEMPTS {
        let (value, revision) = match load(&sessions, &key).await {
            Ok(Some(found)) => found,
            Ok(None) => return text("1"),
            Err(()) => return failure(),
        };
        let value = value + 1;
        let mut filter = live(&key);
        filter.insert("rev", revision);
        let set = doc! {
            "data": binary(value),
            "expires_at": date(expires_at()),
            "rev": revision.wrapping_add(1),
        };
        match sessions.update_one(filter, doc! { "$set": set }).await {
            Ok(result) if result.matched_count == 1 => return text(value.to_string()),
            Ok(_) => continue,
            Err(_) => return failure(),
        }
    }
    failure()
}

async fn new(sessions: Sessions) -> HttpResponse {
    let sid = new_sid();
    let document = doc! {
        "_id": key(&sid),
        "data": binary(0),
        "expires_at": date(expires_at()),
        "created_at": date(SystemTime::now()),
        "rev": 1_i64,
    };
    match sessions.insert_one(document).await {
        Ok(_) => with_cookie(&sid, "0"),
        Err(_) => failure(),
    }
}

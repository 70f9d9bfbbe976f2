//! What the configuration and the session data accept can be used later: a configuration
//! at every maximum serves requests without a panic, a `Cookie` header with bytes that are
//! not UTF-8 in other cookies still finds the session, and every value `insert` accepts
//! is read back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::time::Duration;

use serde_json::{json, Value};
use session_core::adapter::{CookieUpdate, RequestCookie, SessionManager, SessionState};
use session_core::store::{StoreKey, UserKey};
use session_core::{
    Codec, Config, ConfigBuilder, ConfigError, DurationSetting, IdLength, KeyScheme, Keyring,
    MemoryStore, SessionId, ValueError, MAX_ID_BYTES,
};

fn builder() -> ConfigBuilder {
    Config::builder(Keyring::new([[3u8; 32]]).unwrap())
}

/// `[[...[1]...]]`, `depth` arrays deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |value, _| Value::Array(vec![value]))
}

/// The `name=value` pair a `Set-Cookie` header hands the browser.
fn pair(update: CookieUpdate) -> String {
    let CookieUpdate::Set(header) = update else {
        panic!("expected a cookie, got {update:?}");
    };
    header.split(';').next().unwrap().to_owned()
}

#[test]
fn a_duration_too_long_for_the_first_save_is_refused_at_build() {
    for (what, config) in [
        (DurationSetting::Lifetime, builder().lifetime(Duration::MAX)),
        (
            DurationSetting::AbsoluteTimeout,
            builder().absolute_timeout(Duration::MAX),
        ),
        (
            DurationSetting::RefreshThreshold,
            builder().refresh_threshold(Duration::MAX),
        ),
    ] {
        assert_eq!(
            config.build().err(),
            Some(ConfigError::DurationTooLong(what))
        );
    }
}

#[tokio::test]
async fn a_configuration_at_every_maximum_serves_requests() {
    let prefix = "k".repeat(Config::MAX_KEY_PREFIX_LEN);
    let id = SessionId::generate(IdLength::new(MAX_ID_BYTES).unwrap()).unwrap();
    let plain = StoreKey::with_scheme(&prefix, &id, KeyScheme::PlainId);
    assert_eq!(plain.as_str().len(), 250, "memcached's limit");
    assert!(StoreKey::new(&prefix, &id).as_str().len() < 250);
    assert!(UserKey::new(&prefix, "a user").as_str().len() < 250);
    for codec in [Codec::Json, Codec::MessagePack] {
        let config = builder()
            .lifetime(Config::MAX_DURATION)
            .absolute_timeout(Config::MAX_DURATION)
            .refresh_threshold(Config::MAX_DURATION)
            .key_prefix(prefix.as_str())
            .key_scheme(KeyScheme::PlainId)
            .id_length(MAX_ID_BYTES)
            .cookie_name("__Host-s")
            .cookie_partitioned(true)
            .codec(codec)
            .build()
            .unwrap();
        let sessions = SessionManager::new(MemoryStore::new(), config);

        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("n", 1).unwrap();
        let update = sessions.save(state).await.unwrap();
        let CookieUpdate::Set(header) = &update else {
            panic!("{update:?}");
        };
        assert!(header.contains("; Expires="), "{codec:?}");
        let mut cookie = pair(update);

        for step in ["read", "write", "regenerate"] {
            let mut state = sessions.load(sessions.verify([&cookie])).await.unwrap();
            assert_eq!(state.get::<i64>("n").unwrap(), Some(1), "{codec:?} {step}");
            match step {
                "write" => state.insert("m", 2).unwrap(),
                "regenerate" => state.regenerate(),
                _ => {}
            }
            if let CookieUpdate::Set(header) = sessions.save(state).await.unwrap() {
                cookie = header.split(';').next().unwrap().to_owned();
            }
        }
        let mut state = sessions.load(sessions.verify([&cookie])).await.unwrap();
        assert_eq!(state.get::<i64>("m").unwrap(), Some(2), "{codec:?}");
        state.destroy();
        let update = sessions.save(state).await.unwrap();
        assert!(matches!(update, CookieUpdate::Remove(_)), "{codec:?}");
    }
}

#[tokio::test]
async fn a_byte_that_is_not_utf8_in_another_cookie_does_not_hide_the_session() {
    let sessions = SessionManager::new(MemoryStore::new(), builder().build().unwrap());
    let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
    state.insert("user", "ada").unwrap();
    let cookie = pair(sessions.save(state).await.unwrap());

    let header = [b"a=\xff; ".as_slice(), cookie.as_bytes(), b"; b=\xc3\x28"].concat();
    let verified = sessions.verify([header.as_slice()]);
    assert!(matches!(verified, RequestCookie::Valid(_)));
    let state = sessions.load(verified).await.unwrap();
    assert_eq!(state.get::<String>("user").unwrap().as_deref(), Some("ada"));

    // Across several headers too, and the session cookie's own bad bytes make it invalid.
    let headers: [&[u8]; 2] = [b"a=\xff", cookie.as_bytes()];
    assert!(matches!(sessions.verify(headers), RequestCookie::Valid(_)));
    assert_eq!(
        sessions.verify([b"session=\xff\xfe".as_slice()]),
        RequestCookie::Invalid
    );
    assert_eq!(
        sessions.verify([b"a=\xff".as_slice()]),
        RequestCookie::Absent
    );
}

#[test]
fn a_value_nested_deeper_than_the_codecs_read_is_refused_at_insert_and_update() {
    let mut state = SessionState::new(true);
    state.insert("kept", 1).unwrap();
    let error = state.insert("deep", nested(200)).unwrap_err();
    assert!(
        matches!(&error, ValueError::TooDeep { key } if key == "deep"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("deeper than 125 levels"),
        "{error}"
    );
    let error = state
        .update("deep", |_: Option<Value>| {
            nested(Codec::MAX_VALUE_DEPTH + 1)
        })
        .unwrap_err();
    assert!(matches!(error, ValueError::TooDeep { .. }), "{error:?}");
    assert!(!state.contains("deep"));
    assert_eq!(state.keys().collect::<Vec<_>>(), ["kept"]);
}

#[tokio::test]
async fn every_value_insert_accepts_is_read_back() {
    for codec in [Codec::Json, Codec::MessagePack] {
        let config = builder().codec(codec).build().unwrap();
        let sessions = SessionManager::new(MemoryStore::new(), config);
        let mut state = sessions.load(RequestCookie::Absent).await.unwrap();
        state.insert("hundred", nested(100)).unwrap();
        state
            .insert("deepest", nested(Codec::MAX_VALUE_DEPTH))
            .unwrap();
        let cookie = pair(sessions.save(state).await.unwrap());

        let state = sessions.load(sessions.verify([&cookie])).await.unwrap();
        assert_eq!(state.get_value("hundred"), Some(&nested(100)), "{codec:?}");
        let deepest = nested(Codec::MAX_VALUE_DEPTH);
        assert_eq!(state.get_value("deepest"), Some(&deepest), "{codec:?}");
    }
}

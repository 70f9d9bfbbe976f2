//! Typed session values: one struct of the application's, kept under a key of its own.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A type the application keeps in the session under a fixed key, and reads back typed,
/// with a default when the session has none: the key is written once, in the `impl`,
/// rather than at every call site.
///
/// Adapters read and write it with `value`, `set_value`, `update_value` and `take_value`
/// (on `session_actix::Session`, and on
/// [`SessionState`](crate::adapter::SessionState) for adapter authors).
///
/// # Example
/// ```
/// use serde::{Deserialize, Serialize};
/// use session_core::adapter::SessionState;
/// use session_core::SessionValue;
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Cart {
///     items: Vec<String>,
/// }
///
/// impl SessionValue for Cart {
///     const KEY: &'static str = "cart";
/// }
///
/// let mut state = SessionState::new(true);
/// assert!(state.value::<Cart>()?.items.is_empty());
/// let cart = state.update_value(|cart: &mut Cart| cart.items.push("book".to_owned()))?;
/// assert_eq!(cart.items, ["book"]);
/// assert_eq!(state.value::<Cart>()?.items, ["book"]);
/// # Ok::<(), session_core::ValueError>(())
/// ```
pub trait SessionValue: Serialize + DeserializeOwned + Default + 'static {
    /// The session key the value is kept under. Keep it distinct from the keys the
    /// application sets by hand.
    const KEY: &'static str;
}

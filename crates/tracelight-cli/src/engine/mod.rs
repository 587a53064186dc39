//! The search engine: the query and its parser ([`filter`]), the scanner that finds candidate
//! lines and decides them ([`scan`]), the inputs ([`source`]), the collectors and the time-ordered
//! merge ([`collect`]), and time parsing ([`time`]).
//!
//! The modules are private to the crate; what other code may rely on is re-exported at the crate
//! root (see [`crate::Query`] and [`crate::search`]).

pub(crate) mod collect;
pub(crate) mod filter;
pub(crate) mod preset;
pub(crate) mod scan;
pub(crate) mod source;
pub(crate) mod time;

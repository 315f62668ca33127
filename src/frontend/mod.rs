//! The front-ends: what turns a service's spans and events ([`layer`]), `metrics` macros ([`recorder`]) and pip
//! calls ([`counters_api`], [`handle`], [`timing`]) into updates of the store. They write the store and never
//! see the exporter or a sink.

use std::any::Any;
use std::sync::Arc;

pub(crate) mod cached_cell;
pub(crate) mod counters_api;
pub(crate) mod handle;
pub(crate) mod layer;
pub(crate) mod recorder;
pub(crate) mod timing;

/// What a front-end holds to keep the store's owner (the counters and their exporter) alive, without knowing
/// its type: while a layer or recorder lives, its counters go on publishing, and dropping the last owner of
/// any kind flushes them.
pub(crate) type Owner = Arc<dyn Any + Send + Sync>;

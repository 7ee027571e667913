//! Ports: the traits through which the domain talks to the world.
//!
//! Each file holds one port; its doc comment is the contract every adapter must keep, checked
//! by the conformance suites in [`crate::testing`]. Handlers receive `Arc<dyn Port>` values
//! assembled once, in one composition root.

pub mod alert_sink;
pub mod bus;
pub mod clock;
pub mod cluster;
pub mod object_copier;
pub mod object_store;
pub mod queue;
pub mod snapshot_copier;
pub mod state_store;

pub use alert_sink::{AlertSink, AlertSinkError};
pub use bus::{Bus, BusError, OutgoingMessage};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cluster::{ApiResourceInfo, Cluster, ClusterConnector, ClusterError, ListPage};
pub use object_copier::{ObjectCopier, ObjectCopyState, ObjectFingerprint, TargetObject, Traffic};
pub use object_store::{ByteStream, ObjectMeta, ObjectPage, ObjectStore, ObjectStoreError, PutOptions};
pub use queue::{DeadLetteredMessage, QueueError, QueueReceiver, QueueStats, ReceivedMessage};
pub use snapshot_copier::{CopyProgress, SnapshotCopier, SnapshotCopyError};
pub use state_store::{BatchOp, ETag, Entity, Page, Query, StateStore, StateStoreError};

//! Where sessions find the objects a table names: DataFusion's registry (local files, and
//! stores registered by hand), plus any `s3://bucket` made on first use from the standard AWS
//! environment variables. Every place a plan runs uses it (local sessions, the cluster's
//! scheduler and executors), so an `s3://` store needs nothing registered beforehand there.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use evtxsql_ingest::s3::object_store_for_bucket;
use object_store::ObjectStore;
use url::Url;

/// DataFusion's object store registry that also knows S3 buckets (see the module doc).
#[derive(Debug, Default)]
pub struct ObjectStores {
    known: DefaultObjectStoreRegistry,
}

impl ObjectStores {
    pub fn new() -> Self {
        Self::default()
    }
}

impl ObjectStoreRegistry for ObjectStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        match self.known.get_store(url) {
            Ok(store) => Ok(store),
            Err(not_known) => {
                let bucket = url.host_str().filter(|_| url.scheme() == "s3");
                let Some(bucket) = bucket else {
                    return Err(not_known);
                };
                let store = object_store_for_bucket(bucket).map_err(|message| {
                    DataFusionError::Execution(format!("s3://{bucket}: {message}"))
                })?;
                self.known.register_store(url, store.clone());
                Ok(store)
            }
        }
    }
}

/// A runtime builder whose registry is [`ObjectStores`].
pub fn runtime_builder() -> RuntimeEnvBuilder {
    RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(ObjectStores::new()))
}

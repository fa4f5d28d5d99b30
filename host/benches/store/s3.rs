//! The S3 rows.

use std::hint::black_box;
use std::time::Duration;

use artifacts::{ArtifactStore, ArtifactType};
use object_store::ObjectStoreExt;

use super::garage;
use super::measure::{SIZES, content, row, time};

/// S3 backend on a local one-node Garage server, against a native baseline
/// doing the same requests with the same client (`object_store`): put = hash,
/// PUT the blob, PUT a small record; get = GET the blob and hash it.
pub fn rows(budget: Duration) {
    let garage = match garage::Garage::start(1) {
        Ok(g) => g,
        Err(reason) => {
            println!("| S3 rows skipped: {reason} |||| ");
            return;
        }
    };
    let config = garage.config(0, "bench-store");
    let store = ArtifactStore::builder()
        .max_artifact_bytes(64 << 20)
        .open_s3(&config)
        .unwrap();
    let native_cfg = garage.config(0, "bench-native");
    let (native, rt) = garage::raw_client(&native_cfg);
    let path = |kind: &str, hex: &str| {
        object_store::path::Path::from(format!("bench-native/{kind}/{}/{hex}", &hex[..2]))
    };
    let native_put = |data: &[u8]| {
        let hex = blake3::hash(data).to_hex();
        rt.block_on(async {
            native
                .put(&path("blobs", &hex), data.to_vec().into())
                .await
                .unwrap();
            native
                .put(&path("records", &hex), vec![0u8; 58].into())
                .await
                .unwrap();
        });
        hex
    };
    for (label, len) in SIZES {
        let native_put_t = time(budget, 3, |i| {
            native_put(&content(len, i));
        });
        let ours_put = time(budget, 3, |i| {
            black_box(store.put(&content(len, i), ArtifactType::Generic).unwrap());
        });
        row(&format!("s3 put {label}"), len, native_put_t, ours_put);
        let data = content(len, 0);
        let hex = native_put(&data);
        let hash = store.put(&data, ArtifactType::Generic).unwrap();
        let native_get = time(budget, 3, |_| {
            let got = rt.block_on(async {
                native
                    .get(&path("blobs", &hex))
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
            });
            assert_eq!(blake3::hash(&got).to_hex(), hex);
        });
        let ours_get = time(budget, 3, |_| {
            black_box(store.get(&hash).unwrap());
        });
        row(&format!("s3 get {label}"), len, native_get, ours_get);
    }
}

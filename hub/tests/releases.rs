//! Releases: `release add` verifies a real `rauc bundle` against `[releases] keyring` and
//! publishes it (with a real `casync make` chunk store) for a channel; enrolled devices get
//! offers from `GET /v1/updates` and download the files with `Range` over mTLS.

mod common;

use std::path::Path;
use std::process::Command;

use outpost_hub::releases;
use outpost_hub::store::Store;
use outpost_testkit::bundle::{rauc_bundle, Manifest};
use outpost_testkit::pki::{KeyType, Pki};

fn bundle(dir: &Path, pki: &Pki, signer: &str, version: &str) -> std::path::PathBuf {
    let content = dir.join(format!("content-{version}-{signer}"));
    std::fs::create_dir_all(&content).unwrap();
    let image: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(content.join("rootfs.img"), image).unwrap();
    let out = dir.join(format!("{version}-{signer}.raucb"));
    let manifest = Manifest {
        compatible: "hub-test",
        version,
        description: "release test",
        build: "1",
        format: "plain",
        images: &[("rootfs", "rootfs.img")],
    };
    rauc_bundle(&content, &manifest, pki, signer, &out);
    out
}

/// A hub folder with its store, and a bundle PKI: `signer` under the trusted `ca`, `intruder`
/// under another CA.
fn hub_with_pki(d: &Path) -> (outpost_hub::config::Config, Store, Pki) {
    common::init_dir(d, 1);
    let pki = Pki::new(&d.join("pki"));
    pki.ca("ca", "Bundle CA", KeyType::Ec);
    pki.signer("ca", "signer", "Bundle Signer", KeyType::Ec, "");
    pki.ca("other", "Other CA", KeyType::Ec);
    pki.signer("other", "intruder", "Intruder", KeyType::Ec, "");
    let config_path = d.join("hub.toml");
    let toml = std::fs::read_to_string(&config_path).unwrap();
    let config = outpost_hub::config::Config::parse(&toml, &config_path).unwrap();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let store = Store::open(&config.db_path()).unwrap();
    (config, store, pki)
}

#[tokio::test]
async fn bundles_are_verified_offered_by_channel_and_served_with_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (config, mut store, pki) = hub_with_pki(d);
    let v1 = bundle(d, &pki, "signer", "1.0");
    let v2 = bundle(d, &pki, "signer", "2.0");
    let forged = bundle(d, &pki, "intruder", "3.0");
    let releases_dir = config.releases_dir();

    // No keyring configured: refused. A bundle from another CA: refused. Nothing published.
    let err = releases::add(&mut store, &releases_dir, None, &v1, None, "stable", 1).unwrap_err();
    assert!(err.to_string().contains("keyring"), "{err}");
    let keyring = pki.cert("ca");
    let err = releases::add(
        &mut store,
        &releases_dir,
        Some(&keyring),
        &forged,
        None,
        "stable",
        1,
    )
    .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let err = releases::add(
        &mut store,
        &releases_dir,
        Some(&keyring),
        &v1,
        None,
        "no/slash",
        1,
    )
    .unwrap_err();
    assert!(err.to_string().contains("channel"), "{err}");
    assert!(store.releases().unwrap().is_empty());

    // v1 on stable, with a chunk store made by the real casync.
    let blob: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
        .collect();
    std::fs::write(d.join("blob"), &blob).unwrap();
    let out = Command::new("casync")
        .args(["make", "--store=blob.castr", "blob.caibx", "blob"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r1 = releases::add(
        &mut store,
        &releases_dir,
        Some(&keyring),
        &v1,
        Some(&d.join("blob.castr")),
        "stable",
        1,
    )
    .unwrap();
    assert_eq!(
        (r1.version.as_str(), r1.compatible.as_str()),
        ("1.0", "hub-test")
    );
    drop(store);

    let hub = common::RunningHub::start(&d.join("hub.toml")).await;
    let ca = common::ca_pem(d);
    let device = common::device_identity(d, "device-001");
    let mut client = common::Client::connect(hub.addr, &ca, Some(&device))
        .await
        .unwrap();
    let ask = |version: &str, channel: &str, compatible: &str| {
        format!(
            "/v1/updates?{}",
            outpost_proto::updates::UpdateQuery {
                compatible: compatible.into(),
                version: version.into(),
                channel: channel.into(),
            }
            .to_query()
        )
    };
    let (status, _, body) = client
        .send_raw("GET", &ask("0.9", "stable", "hub-test"), &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
    let offer: outpost_proto::updates::UpdateOffer = serde_json::from_slice(&body).unwrap();
    assert_eq!(offer.version, "1.0");
    assert_eq!(offer.release, r1.id);
    for (version, channel, compatible) in [
        ("1.0", "stable", "hub-test"),
        ("0.9", "beta", "hub-test"),
        ("0.9", "stable", "other"),
    ] {
        let (status, _, body) = client
            .send_raw("GET", &ask(version, channel, compatible), &[])
            .await
            .unwrap();
        assert_eq!(status, 204, "{version} {channel} {compatible}");
        assert!(body.is_empty());
    }
    let (status, _, _) = client
        .send_raw("GET", "/v1/updates?compatible=x", &[])
        .await
        .unwrap();
    assert_eq!(status, 400);

    // The bundle, whole and in ranges.
    let file = std::fs::read(&v1).unwrap();
    let (status, headers, body) = client
        .send_raw("GET", &offer.bundle_path, &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.as_ref(), file.as_slice());
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(offer.bundle_size, file.len() as u64);
    assert_eq!(
        offer.bundle_sha256,
        outpost_proto::sha256_hex(&file).as_str()
    );
    let (status, headers, body) = client
        .send_raw("GET", &offer.bundle_path, &[("range", "bytes=1000-1999")])
        .await
        .unwrap();
    assert_eq!(status, 206);
    assert_eq!(body.as_ref(), &file[1000..2000]);
    assert_eq!(
        headers["content-range"],
        format!("bytes 1000-1999/{}", file.len()).as_str()
    );
    let (status, headers, _) = client
        .send_raw(
            "GET",
            &offer.bundle_path,
            &[("range", &format!("bytes={}-", file.len()))],
        )
        .await
        .unwrap();
    assert_eq!(status, 416);
    assert_eq!(
        headers["content-range"],
        format!("bytes */{}", file.len()).as_str()
    );
    let (status, _, body) = client
        .send_raw("HEAD", &offer.bundle_path, &[])
        .await
        .unwrap();
    assert_eq!((status.as_u16(), body.len()), (200, 0));

    // Chunks of the store, by the ids in casync's index.
    let index =
        outpost_casync::Index::parse(&std::fs::read(d.join("blob.caibx")).unwrap()).unwrap();
    let store_path = offer.store_path.clone().expect("a store");
    let mut rebuilt = Vec::new();
    for c in index.chunks() {
        let (status, _, body) = client
            .send_raw("GET", &format!("{store_path}{}", c.id.store_path()), &[])
            .await
            .unwrap();
        assert_eq!(status, 200);
        rebuilt.extend(
            outpost_casync::decompress_verified(&body, &c.id, c.len, index.digest()).unwrap(),
        );
    }
    assert_eq!(rebuilt, blob);

    // Nothing outside a release's files, and nothing without a client certificate.
    for path in [
        "/v1/releases/../hub.toml".to_owned(),
        format!("/v1/releases/{}/../../hub.toml", r1.id),
        format!(
            "/v1/releases/{}/store/abcd/{}.cacnk",
            r1.id,
            "ab".repeat(32)
        ),
        format!("/v1/releases/{}/bundle.raucb", "0".repeat(16)),
        format!("/v1/releases/{}/hub.sqlite", r1.id),
    ] {
        let (status, _, _) = client.send_raw("GET", &path, &[]).await.unwrap();
        assert_eq!(status, 404, "{path}");
    }
    let (status, _, _) = client
        .send_raw("PUT", &offer.bundle_path, &[])
        .await
        .unwrap();
    assert_eq!(status, 405);
    let mut anonymous = common::Client::connect(hub.addr, &ca, None).await.unwrap();
    for path in [
        offer.bundle_path.as_str(),
        &ask("0.9", "stable", "hub-test"),
    ] {
        let (status, _, _) = anonymous.send_raw("GET", path, &[]).await.unwrap();
        assert_eq!(status, 401, "{path}");
    }

    // v2 on stable: a device on 1.0 is offered 2.0. Adding v1 again rolls the channel back.
    let mut store = Store::open(&config.db_path()).unwrap();
    releases::add(
        &mut store,
        &releases_dir,
        Some(&keyring),
        &v2,
        None,
        "stable",
        2,
    )
    .unwrap();
    let (status, _, body) = client
        .send_raw("GET", &ask("1.0", "stable", "hub-test"), &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
    let offer2: outpost_proto::updates::UpdateOffer = serde_json::from_slice(&body).unwrap();
    assert_eq!((offer2.version.as_str(), offer2.store_path), ("2.0", None));
    releases::add(
        &mut store,
        &releases_dir,
        Some(&keyring),
        &v1,
        None,
        "stable",
        3,
    )
    .unwrap();
    let (status, _, body) = client
        .send_raw("GET", &ask("2.0", "stable", "hub-test"), &[])
        .await
        .unwrap();
    assert_eq!(status, 200);
    let back: outpost_proto::updates::UpdateOffer = serde_json::from_slice(&body).unwrap();
    assert_eq!(back.version, "1.0");
    assert!(
        back.store_path.is_some(),
        "the store of an earlier add is kept"
    );
    hub.stop().await;
}

/// A directory of manifests: the layout `workloads set DIR` packs.
fn workload_dir(dir: &Path, name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("manifests")).unwrap();
    for (file, text) in files {
        std::fs::write(root.join("manifests").join(file), text).unwrap();
    }
    root
}

const WEB: &str =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n";

#[test]
fn workload_sets_are_packed_signed_checked_and_offered_by_revision() {
    use outpost_hub::workloads::{self, PackOptions};
    use outpost_proto::workloads::WorkloadQuery;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (config, mut store, pki) = hub_with_pki(d);
    let keyring = pki.cert("ca");
    let pack = |src: &Path, signer: &str, revision: &str| {
        let out = d.join(format!("{revision}-{signer}.raucb"));
        let opts = PackOptions {
            compatible: "hub-test".into(),
            revision: revision.into(),
            cert: pki.cert(signer),
            key: pki.key(signer),
            rauc: "rauc".into(),
        };
        workloads::pack(src, &opts, &out).map(|()| out)
    };

    let good = workload_dir(d, "good", &[("web.yaml", WEB)]);
    let r1 = pack(&good, "signer", "1").unwrap();
    let set = workloads::set(
        &mut store,
        &config.releases_dir(),
        Some(&keyring),
        &r1,
        "stable",
        1,
    )
    .unwrap();
    assert_eq!(
        (set.revision.as_str(), set.manifests, set.images),
        ("1", 1, 0)
    );
    assert!(config
        .releases_dir()
        .join(&set.id)
        .join("bundle.raucb")
        .is_file());
    assert!(store.serves_artifact(&set.id).unwrap());

    let query = |revision: &str| WorkloadQuery {
        compatible: "hub-test".into(),
        revision: revision.into(),
        channel: "stable".into(),
    };
    let offer = store
        .workload_offer_for(&query(""))
        .unwrap()
        .unwrap()
        .offer();
    assert_eq!(offer.revision, "1");
    assert_eq!(
        offer.artifact_path,
        format!("/v1/releases/{}/bundle.raucb", set.id)
    );
    assert!(store.workload_offer_for(&query("1")).unwrap().is_none());
    let mut other = query("");
    other.channel = "beta".into();
    assert!(store.workload_offer_for(&other).unwrap().is_none());

    // Refused, and nothing offered: another CA's signature, broken YAML, an OS bundle.
    let forged = pack(&good, "intruder", "2").unwrap();
    let err = workloads::set(
        &mut store,
        &config.releases_dir(),
        Some(&keyring),
        &forged,
        "stable",
        2,
    )
    .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let broken = workload_dir(
        d,
        "broken",
        &[("web.yaml", WEB), ("db.yaml", "kind: [unclosed\n")],
    );
    let r3 = pack(&broken, "signer", "3").unwrap();
    let err = workloads::set(
        &mut store,
        &config.releases_dir(),
        Some(&keyring),
        &r3,
        "stable",
        3,
    )
    .unwrap_err();
    assert!(err.to_string().contains("db.yaml"), "{err}");
    let os = bundle(d, &pki, "signer", "4.0");
    let err = workloads::set(
        &mut store,
        &config.releases_dir(),
        Some(&keyring),
        &os,
        "stable",
        4,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no 'manifests' image"), "{err}");
    let offer = store.workload_offer_for(&query("")).unwrap().unwrap();
    assert_eq!(offer.revision, "1");
    assert_eq!(store.workload_sets().unwrap().len(), 1);
}

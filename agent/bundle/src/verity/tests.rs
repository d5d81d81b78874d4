use super::*;

/// Builds data ‖ tree the way `veritysetup format --format=1 --no-superblock` does.
pub(crate) fn build(data: &[u8], salt: &[u8; 32]) -> (VerityParams, Vec<u8>) {
    let mut levels: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<&[u8]> = data.chunks(BLOCK_SIZE).collect();
    let mut owned;
    loop {
        let digests: Vec<[u8; 32]> = cur.iter().map(|b| hash_block(salt, b)).collect();
        let mut level = Vec::new();
        for chunk in digests.chunks(DIGESTS_PER_BLOCK as usize) {
            let mut block = chunk.concat();
            block.resize(BLOCK_SIZE, 0);
            level.extend_from_slice(&block);
        }
        let n = level.len() / BLOCK_SIZE;
        levels.push(level);
        if n == 1 {
            break;
        }
        owned = levels.last().unwrap().clone();
        cur = owned.chunks(BLOCK_SIZE).collect();
    }
    let root = hash_block(salt, &levels.last().unwrap()[..BLOCK_SIZE]);
    let tree: Vec<u8> = levels.iter().rev().flatten().copied().collect();
    let params = VerityParams {
        root_hash: root,
        salt: *salt,
        tree_size: tree.len() as u64,
    };
    (params, tree)
}

pub(crate) fn data(blocks: usize) -> Vec<u8> {
    (0..blocks * BLOCK_SIZE)
        .map(|i| (i * 7 % 251) as u8)
        .collect()
}

#[test]
fn tree_sizes_match_rauc() {
    // From the reference run: 307 data blocks -> levels [3, 1] -> 16384 bytes.
    assert_eq!(level_sizes(307), vec![3, 1]);
    assert_eq!(tree_size(307 * 4096), 16384);
    assert_eq!(level_sizes(128), vec![1]);
    assert_eq!(level_sizes(129 * 128), vec![129, 2, 1]);
}

#[test]
fn verifies_and_reads_through_a_two_level_tree() {
    let d = data(300);
    let (params, tree) = build(&d, &[9u8; 32]);
    assert_eq!(params.tree_size, tree_size(d.len() as u64));
    let t = HashTree::verify(&params, d.len() as u64, tree).unwrap();
    let mut r = VerityReader::new(std::io::Cursor::new(d.clone()), Arc::new(t));
    r.seek(SeekFrom::Start(5000)).unwrap();
    let mut out = vec![0u8; 10_000];
    r.read_exact(&mut out).unwrap();
    assert_eq!(out, d[5000..15000]);
    let mut all = Vec::new();
    r.seek(SeekFrom::Start(0)).unwrap();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, d);
}

#[test]
fn detects_tampered_data_tree_and_root() {
    let d = data(300);
    let (params, tree) = build(&d, &[1u8; 32]);
    let mut bad_tree = tree.clone();
    bad_tree[BLOCK_SIZE + 5] ^= 1; // a leaf-level block
    assert!(matches!(
        HashTree::verify(&params, d.len() as u64, bad_tree),
        Err(VerityError::HashBlockMismatch { level: 0, index: 0 })
    ));
    let mut bad_root = params.clone();
    bad_root.root_hash[0] ^= 1;
    assert!(matches!(
        HashTree::verify(&bad_root, d.len() as u64, tree.clone()),
        Err(VerityError::RootHashMismatch)
    ));
    let t = HashTree::verify(&params, d.len() as u64, tree).unwrap();
    let mut tampered = d.clone();
    tampered[200 * BLOCK_SIZE + 17] ^= 0x80;
    let mut r = VerityReader::new(std::io::Cursor::new(tampered), Arc::new(t));
    let mut sink = Vec::new();
    let err = r.read_to_end(&mut sink).unwrap_err();
    assert!(err.to_string().contains("data block 200"), "{err}");
    assert_eq!(sink.len(), 200 * BLOCK_SIZE);
}

#[test]
fn refuses_wrong_sizes() {
    let d = data(3);
    let (mut params, tree) = build(&d, &[0u8; 32]);
    assert!(matches!(
        HashTree::verify(&params, 4095, tree.clone()),
        Err(VerityError::BadDataSize(4095))
    ));
    params.tree_size += 4096;
    assert!(matches!(
        HashTree::verify(&params, d.len() as u64, tree),
        Err(VerityError::TreeSizeMismatch { .. })
    ));
}

//! Parsing Vidur-schema fixtures.

use super::*;
use crate::synth;

#[test]
fn parses_mlp_profile() {
    let text = synth::mlp_csv(&[1, 96, 200], 0.0, 1);
    let Profile::Mlp(rows) = parse("mlp.csv", &text).unwrap() else { panic!() };
    assert_eq!(rows.len(), 3);
    assert_eq!((rows[2].num_tokens, rows[2].tp, rows[2].n_embd), (200, 1, 4096));
    assert!((rows[0].layer_ms - synth::MLP_FLAT_MS).abs() < 1e-12);
    assert!((rows[2].layer_ms - (0.29 + 0.0019 * 104.0)).abs() < 1e-12);
    assert_eq!(rows[0].emb_ms, 0.003);
}

#[test]
fn parses_attention_profile() {
    let text = synth::attention_csv(&[(2, 32)], &[(64, 0)], 0.0, 1);
    let Profile::Attention(rows) = parse("attn.csv", &text).unwrap() else { panic!() };
    assert_eq!(rows.len(), 2);
    let d = &rows[0];
    assert!(!d.is_prefill && d.batch_size == 2 && d.kv_cache_size == 32);
    assert!((d.layer_ms - (0.012 + 1e-4 + 1.3e-6 * 64.0)).abs() < 1e-12);
    assert_eq!(d.kv_bytes_per_token_per_layer_per_gpu(), 2048);
    assert_eq!(d.q_width_per_gpu(), 4096);
    assert!(rows[1].is_prefill && rows[1].prefill_chunk_size == 64);
}

#[test]
fn errors_name_file_line_and_column() {
    let text = synth::mlp_csv(&[1, 2], 0.0, 1).replace(",2,1\n", ",two,1\n");
    let e = parse("m.csv", &text).unwrap_err();
    assert!(e.contains("m.csv:3") && e.contains("num_tokens"), "{e}");
    assert!(parse("x.csv", "a,b\n1,2\n").unwrap_err().contains("not a Vidur"));
}

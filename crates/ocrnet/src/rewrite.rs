//! An equivalent form of the network's graph that rten 0.27 runs faster.
//!
//! rten runs a general convolution as im2col packing followed by a matrix product. For a 3×3
//! convolution with many input and few output channels (the detector's five 96 → 24
//! convolutions in its neck and head, two of them at a quarter of the input's resolution) the
//! packing of 96 × 9 rows per output pixel dominates a product with only 24 rows: on a
//! 640×480 frame they were about 40 % of the network's time. Such a convolution is rewritten
//! as a 1×1 convolution with nine times the output channels — one block of output channels per
//! kernel tap, which rten runs as a plain matrix product with no im2col — followed by a zero
//! pad of one pixel, nine slices (each tap's block, shifted by its offset) and their sum:
//!
//! ```text
//! out[c, y, x] = Σ_(ky,kx) Σ_ci W[c, ci, ky, kx] · in[ci, y + ky − 1, x + kx − 1]
//!              = Σ_(ky,kx) Y[(3·ky + kx)·C + c, y + ky − 1, x + kx − 1]
//!   where Y[(3·ky + kx)·C + c] = Σ_ci W[c, ci, ky, kx] · in[ci]   (the 1×1 convolution)
//! ```
//!
//! A tap that reads outside the input reads a zero of the pad, as the original convolution's
//! zero padding does. The sums are the same products added in another order, so the outputs
//! agree to float rounding (tests: a small graph and, when the weights are installed, the
//! detector's own probability maps).
//!
//! Only convolutions whose result is certain to be the same are rewritten: kernel 3×3, stride
//! and dilation 1, one group, padding 1 on every side, no bias, weights a constant `f32`
//! tensor, and fewer output than input channels (where the packing dominates). Everything else
//! in the graph is passed through unchanged.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use rten_onnx::onnx::{
    AttributeProto, AttributeType, DataType, ModelProto, NodeProto, TensorProto,
};

/// Returns the model with its eligible 3×3 convolutions rewritten, and how many were.
pub(crate) fn faster_graph(bytes: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let mut model =
        ModelProto::parse_buf(bytes).map_err(|e| format!("cannot parse the model: {e}"))?;
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| "the model has no graph".to_string())?;
    // The weights of each convolution to rewrite, by its position in the graph.
    let mut eligible_at: HashMap<usize, Weights> = {
        // Constant tensors by the name of the value they define (borrowed: no weight copied).
        let constants: HashMap<&str, &TensorProto> = graph
            .node
            .iter()
            .filter(|n| n.op_type.as_deref() == Some("Constant") && n.output.len() == 1)
            .filter_map(|n| {
                let value = n
                    .attribute
                    .iter()
                    .find(|a| a.name.as_deref() == Some("value"))?;
                Some((n.output[0].as_str(), value.t.as_ref()?))
            })
            .collect();
        graph
            .node
            .iter()
            .enumerate()
            .filter_map(|(i, node)| Some((i, eligible(node, &constants)?)))
            .collect()
    };
    let rewritten = eligible_at.len();
    let mut names: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().chain(&n.output).cloned())
        .collect();
    let mut nodes = Vec::with_capacity(graph.node.len());
    for (i, node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        match eligible_at.remove(&i) {
            Some(weights) => nodes.extend(as_pointwise_taps(&node, &weights, &mut names)),
            None => nodes.push(node),
        }
    }
    graph.node = nodes;
    let out = model
        .write_buf()
        .map_err(|e| format!("cannot write the rewritten model: {e}"))?;
    Ok((out, rewritten))
}

/// A convolution's weights in `[out][in][3][3]` order with their two channel counts.
struct Weights {
    out_channels: usize,
    in_channels: usize,
    values: Vec<f32>,
}

/// The weights of `node` if it is a convolution this module rewrites (see the module docs).
fn eligible(node: &NodeProto, constants: &HashMap<&str, &TensorProto>) -> Option<Weights> {
    if node.op_type.as_deref() != Some("Conv")
        || node.domain.as_deref().is_some_and(|d| !d.is_empty())
        || node.input.len() != 2
        || node.output.len() != 1
    {
        return None;
    }
    // Without `pads` the padding is 0, which this rewrite does not cover.
    let mut padded = false;
    for attr in &node.attribute {
        let ok = match attr.name.as_deref() {
            Some("kernel_shape") => attr.ints == [3, 3],
            Some("strides") | Some("dilations") => attr.ints.iter().all(|&v| v == 1),
            Some("pads") => {
                padded = attr.ints == [1, 1, 1, 1];
                padded
            }
            Some("group") => attr.i == Some(1),
            // auto_pad is NOTSET unless said otherwise; any other value changes the padding.
            Some("auto_pad") => attr.s.as_deref().is_none_or(|s| s == "NOTSET"),
            _ => false,
        };
        if !ok {
            return None;
        }
    }
    if !padded {
        return None;
    }
    let tensor = *constants.get(node.input[1].as_str())?;
    if tensor.data_type != Some(DataType::FLOAT) || tensor.dims.len() != 4 {
        return None;
    }
    let dims: Vec<usize> = tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let (out_channels, in_channels) = (dims[0], dims[1]);
    if dims[2] != 3 || dims[3] != 3 || out_channels == 0 || out_channels >= in_channels {
        return None;
    }
    let count = out_channels * in_channels * 9;
    let values: Vec<f32> = match &tensor.raw_data {
        Some(raw) => {
            let raw = raw.borrow();
            if raw.len() != count * 4 {
                return None;
            }
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect()
        }
        None if tensor.float_data.len() == count => tensor.float_data.clone(),
        None => return None,
    };
    Some(Weights {
        out_channels,
        in_channels,
        values,
    })
}

/// The nodes that replace convolution `node`: the 1×1 convolution, the pad, a slice per tap
/// and the sum, writing `node`'s output. New value names start with `node`'s output name and
/// are made unique against `names`.
fn as_pointwise_taps(node: &NodeProto, w: &Weights, names: &mut HashSet<String>) -> Vec<NodeProto> {
    let (co, ci) = (w.out_channels, w.in_channels);
    let base = &node.output[0];
    let mut fresh = |suffix: &str| {
        let mut name = format!("{base}/taps/{suffix}");
        while !names.insert(name.clone()) {
            name.push('_');
        }
        name
    };
    // Tap t = 3·ky + kx takes output channels t·co .. (t+1)·co.
    let mut pointwise = Vec::with_capacity(9 * co * ci);
    for ky in 0..3 {
        for kx in 0..3 {
            for c in 0..co {
                for i in 0..ci {
                    pointwise.push(w.values[((c * ci + i) * 3 + ky) * 3 + kx]);
                }
            }
        }
    }
    let mut out = Vec::new();
    let weights = fresh("weights");
    out.push(constant(
        &weights,
        f32_tensor(&[9 * co, ci, 1, 1], &pointwise),
    ));
    let products = fresh("products");
    out.push(op(
        "Conv",
        &[&node.input[0], &weights],
        &products,
        vec![
            ints("kernel_shape", &[1, 1]),
            ints("strides", &[1, 1]),
            ints("dilations", &[1, 1]),
            ints("pads", &[0, 0, 0, 0]),
            int("group", 1),
        ],
    ));
    let pads = fresh("pads");
    out.push(constant(&pads, i64_tensor(&[0, 0, 1, 1, 0, 0, 1, 1])));
    let padded = fresh("padded");
    out.push(op("Pad", &[&products, &pads], &padded, Vec::new()));
    // Rows (and columns) ky .. ky + H of the padded H + 2: the end as an offset from the end.
    let end = |k: i64| if k < 2 { k - 2 } else { i64::MAX };
    let axes = fresh("axes");
    out.push(constant(&axes, i64_tensor(&[1, 2, 3])));
    let mut taps = Vec::with_capacity(9);
    for ky in 0..3i64 {
        for kx in 0..3i64 {
            let t = 3 * ky + kx;
            let first = t * co as i64;
            let starts = fresh(&format!("starts{t}"));
            out.push(constant(&starts, i64_tensor(&[first, ky, kx])));
            let ends = fresh(&format!("ends{t}"));
            out.push(constant(
                &ends,
                i64_tensor(&[first + co as i64, end(ky), end(kx)]),
            ));
            let tap = fresh(&format!("tap{t}"));
            out.push(op(
                "Slice",
                &[&padded, &starts, &ends, &axes],
                &tap,
                Vec::new(),
            ));
            taps.push(tap);
        }
    }
    let taps: Vec<&str> = taps.iter().map(String::as_str).collect();
    out.push(op("Sum", &taps, base, Vec::new()));
    out
}

fn op(op_type: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        domain: None,
        name: Some(output.to_string()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        op_type: Some(op_type.to_string()),
        attribute,
    }
}

fn constant(output: &str, value: TensorProto) -> NodeProto {
    let value = AttributeProto {
        name: Some("value".into()),
        t: Some(value),
        r#type: Some(AttributeType::TENSOR),
        ..Default::default()
    };
    op("Constant", &[], output, vec![value])
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: values.to_vec(),
        r#type: Some(AttributeType::INTS),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(value),
        r#type: Some(AttributeType::INT),
        ..Default::default()
    }
}

fn f32_tensor(dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::FLOAT),
        raw_data: Some(RefCell::new(
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )),
        ..Default::default()
    }
}

fn i64_tensor(values: &[i64]) -> TensorProto {
    TensorProto {
        dims: vec![values.len() as i64],
        data_type: Some(DataType::INT64),
        raw_data: Some(RefCell::new(
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rten::Model;
    use rten_onnx::onnx::{GraphProto, OperatorSetIdProto, ValueInfoProto};
    use rten_tensor::prelude::*;
    use rten_tensor::NdTensor;

    /// A deterministic pseudo-random sequence in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// A model of one convolution `x → conv → y` with the given attributes, weights `[co, ci,
    /// k, k]` from a Constant node and an optional bias.
    fn one_conv(co: usize, ci: usize, k: usize, attrs: Vec<AttributeProto>, bias: bool) -> Vec<u8> {
        let mut nodes = vec![constant(
            "w",
            f32_tensor(&[co, ci, k, k], &values(co * ci * k * k, 7)),
        )];
        let mut inputs = vec!["x", "w"];
        if bias {
            nodes.push(constant("b", f32_tensor(&[co], &values(co, 9))));
            inputs.push("b");
        }
        nodes.push(op("Conv", &inputs, "y", attrs));
        let value = |name: &str| ValueInfoProto {
            name: Some(name.into()),
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: Some(8),
            graph: Some(GraphProto {
                node: nodes,
                input: vec![value("x")],
                output: vec![value("y")],
                ..Default::default()
            }),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(13),
            }],
            ..Default::default()
        };
        model.write_buf().unwrap()
    }

    fn run(bytes: &[u8], input: &NdTensor<f32, 4>) -> NdTensor<f32, 4> {
        let model = Model::load(bytes.to_vec()).unwrap();
        model
            .run_one(input.view().into(), None)
            .unwrap()
            .try_into()
            .unwrap()
    }

    fn same_padding() -> Vec<AttributeProto> {
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("strides", &[1, 1]),
            ints("pads", &[1, 1, 1, 1]),
            int("group", 1),
        ]
    }

    #[test]
    fn a_rewritten_convolution_gives_the_same_output() {
        let (co, ci, h, w) = (3, 8, 7, 10);
        let original = one_conv(co, ci, 3, same_padding(), false);
        let (rewritten, count) = faster_graph(&original).unwrap();
        assert_eq!(count, 1);
        let input = NdTensor::from_data([1, ci, h, w], values(ci * h * w, 3));
        let expected = run(&original, &input);
        let got = run(&rewritten, &input);
        assert_eq!(got.shape(), [1, co, h, w]);
        assert_eq!(expected.shape(), got.shape());
        let worst = expected
            .iter()
            .zip(got.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "largest difference {worst}");
        // The border, where taps read the padding, is part of what was compared; and the
        // result is not trivially zero.
        assert!(expected.iter().any(|v| v.abs() > 0.1));
    }

    #[test]
    fn only_convolutions_it_is_certain_of_are_rewritten() {
        let strided = vec![
            ints("kernel_shape", &[3, 3]),
            ints("strides", &[2, 2]),
            ints("pads", &[1, 1, 1, 1]),
        ];
        let unpadded = vec![ints("kernel_shape", &[3, 3])];
        let grouped = vec![
            ints("kernel_shape", &[3, 3]),
            ints("pads", &[1, 1, 1, 1]),
            int("group", 2),
        ];
        let cases = [
            ("bias", one_conv(3, 8, 3, same_padding(), true)),
            ("stride 2", one_conv(3, 8, 3, strided, false)),
            ("no padding", one_conv(3, 8, 3, unpadded, false)),
            ("two groups", one_conv(3, 8, 3, grouped, false)),
            (
                "5×5",
                one_conv(3, 8, 5, vec![ints("pads", &[1, 1, 1, 1])], false),
            ),
            (
                "as many outputs as inputs",
                one_conv(8, 8, 3, same_padding(), false),
            ),
        ];
        for (what, model) in cases {
            let (_, count) = faster_graph(&model).unwrap();
            assert_eq!(count, 0, "{what}");
        }
    }

    #[test]
    fn the_pinned_model_has_its_five_96_to_24_convolutions_rewritten() {
        let dir = crate::default_models_dir();
        let bytes = match crate::install::read_verified(&dir) {
            Ok(bytes) => bytes,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("PP-OCRv4 weights required under CI=true: {e}")
            }
            Err(e) => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!!!! SKIPPED: PP-OCRv4 weights: {e} !!!!!\n"
                );
                return;
            }
        };
        let (rewritten, count) = faster_graph(&bytes).unwrap();
        assert_eq!(count, 5, "the neck's four and the head's one");
        // Once rewritten, nothing is left to rewrite.
        assert_eq!(faster_graph(&rewritten).unwrap().1, 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(faster_graph(b"not a model at all").is_err());
    }
}

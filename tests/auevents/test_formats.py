"""Features, BP4D-style frame label CSV and ActivityNet JSON: round trips and bad input."""

import gzip
import io
import json
import sys

import numpy as np
import pytest

from mlkit.auevents.formats import (
    FrameLabels,
    GroundTruth,
    au_name,
    read_features,
    read_frame_labels,
    read_gt,
    read_results,
    results_to_records,
    write_frame_labels,
    write_gt,
    write_results,
)
from mlkit.errors import InputError, MissingInputError, OutputError


@pytest.fixture
def stdin(monkeypatch):
    def feed(data: bytes):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    return feed


def one_line(exc_info):
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


# --------------------------------------------------------------------------- features

def test_read_features_npz_npy_gz_and_stdin(tmp_path, stdin):
    rng = np.random.default_rng(0)
    feats = {"F001_T1": rng.normal(size=(30, 8)).astype(np.float32), "M002_T3": rng.normal(size=(12, 8))}
    np.savez(tmp_path / "f.npz", **feats)
    got = read_features(tmp_path / "f.npz")
    assert list(got) == ["F001_T1", "M002_T3"]
    for k in feats:
        np.testing.assert_array_equal(got[k], feats[k])
        assert got[k].dtype == feats[k].dtype
    np.save(tmp_path / "F009_T2.npy", feats["F001_T1"])
    assert list(read_features(tmp_path / "F009_T2.npy")) == ["F009_T2"]
    (tmp_path / "x.npy.gz").write_bytes(gzip.compress((tmp_path / "F009_T2.npy").read_bytes()))
    assert list(read_features(tmp_path / "x.npy.gz")) == ["x"]
    stdin((tmp_path / "f.npz").read_bytes())
    assert list(read_features("-")) == ["F001_T1", "M002_T3"]
    stdin((tmp_path / "F009_T2.npy").read_bytes())
    assert list(read_features("-")) == ["stdin"]
    np.save(tmp_path / "i.npy", np.arange(6).reshape(3, 2))
    assert read_features(tmp_path / "i.npy")["i"].dtype == np.float64


@pytest.mark.parametrize("arr, pat", [
    (np.zeros((2, 3, 4)), "wrong shape"), (np.zeros(5), "wrong shape"), (np.zeros((0, 4)), "empty"),
    (np.zeros((3, 0)), "empty"), (np.array([[1.0, np.nan]]), r"not finite.*nan at frame row 0, feature 1"),
    (np.array([[1.0, np.inf]]), "not finite"), (np.array([["a", "b"]]), "not numbers")])
def test_read_features_refuses(tmp_path, arr, pat):
    np.savez(tmp_path / "f.npz", good=np.zeros((2, 2)), bad=arr)
    with pytest.raises(InputError, match=pat) as e:
        read_features(tmp_path / "f.npz")
    assert "'bad'" in one_line(e)


def test_read_features_refuses_other_content(tmp_path):
    (tmp_path / "f.npz").write_bytes(b"seq,frame\n")
    with pytest.raises(InputError, match="not a feature file"):
        read_features(tmp_path / "f.npz")
    np.savez(tmp_path / "e.npz")
    with pytest.raises(InputError, match="no sequences"):
        read_features(tmp_path / "e.npz")
    with pytest.raises(MissingInputError):
        read_features(tmp_path / "missing.npz")


# --------------------------------------------------------------------------- frame labels

BP4D = b"0,1,2,12\n1,0,0,1\n2,1,9,1\n3,1,0,0\n5,0,1,0\n"


def test_read_bp4d_style_and_multi_sequence(tmp_path, stdin):
    (tmp_path / "F001_T1.csv").write_bytes(BP4D)
    got = read_frame_labels(tmp_path / "F001_T1.csv")
    fl = got["F001_T1"]
    assert list(got) == ["F001_T1"] and fl.aus == ["AU1", "AU2", "AU12"]
    np.testing.assert_array_equal(fl.frames, [1, 2, 3, 5])
    assert fl.frames.dtype == np.int64 and fl.values.dtype == np.float64 and fl.coded.dtype == bool
    np.testing.assert_array_equal(fl.values, [[0, 0, 1], [1, 0, 1], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(fl.coded[:, 1], [True, False, True, True])
    stdin(b"frame,AU01,au2,12\n" + BP4D.split(b"\n", 1)[1])
    s = read_frame_labels("-")
    assert list(s) == ["stdin"] and s["stdin"].aus == ["AU1", "AU2", "AU12"]
    np.testing.assert_array_equal(s["stdin"].values, fl.values)
    multi = b"seq,frame,AU6,AU12\nb,0,0.25,1\na,3,1,0\nb,1,0.5,9\na,4,0,0.125\n"
    (tmp_path / "m.csv").write_bytes(multi)
    m = read_frame_labels(tmp_path / "m.csv")
    assert list(m) == ["b", "a"]                                # order of first appearance
    np.testing.assert_array_equal(m["a"].frames, [3, 4])
    np.testing.assert_array_equal(m["b"].values, [[0.25, 1], [0.5, 0]])
    np.testing.assert_array_equal(m["b"].coded, [[True, True], [True, False]])
    assert [au_name(x) for x in ("1", "AU1", "au01", " Au12 ", "smile")] == ["AU1", "AU1", "AU1", "AU12", "smile"]


def test_frame_labels_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    labels = {}
    for seq in ("F001_T1", "M010_T8", "with,comma"):
        T = int(rng.integers(1, 40))
        frames = np.cumsum(rng.integers(1, 3, T)).astype(np.int64)
        values = np.where(rng.random((T, 3)) < 0.5, rng.random((T, 3)), rng.integers(0, 2, (T, 3)))
        coded = rng.random((T, 3)) > 0.1
        labels[seq] = FrameLabels(frames, np.where(coded, values, 0.0), coded, ["AU1", "AU4", "AU17"])
    n = write_frame_labels(labels, tmp_path / "out.csv")
    assert n == sum(len(v.frames) for v in labels.values())
    back = read_frame_labels(tmp_path / "out.csv")
    assert list(back) == list(labels)
    for seq, fl in labels.items():
        for k in ("frames", "values", "coded"):
            np.testing.assert_array_equal(getattr(back[seq], k), getattr(fl, k))
        assert back[seq].aus == fl.aus
    with pytest.raises(InputError, match="other AU columns"):
        write_frame_labels({"a": labels["F001_T1"], "b": FrameLabels(np.arange(1), np.zeros((1, 1)),
                                                                      np.ones((1, 1), bool), ["AU2"])}, tmp_path / "x.csv")


@pytest.mark.parametrize("text, pat", [
    (b"frame,AU1,AU2\n0,1,0\n1,1\n", "line 3: ragged row"),
    (b"frame,AU1,AU2\n0,1,0\n1,1,0,1\n", "line 3: ragged row"),
    (b"frame,AU1\n0,1\n1,x\n", "line 3: an AU value is not a number.*'x'"),
    (b"frame,AU1\n0,1\n1,\n", "line 3: an AU value is not a number"),
    (b"frame,AU1\n0,1\nfoo,1\n", "line 3: frame number is not a number"),
    (b"frame,AU1\n0,1\n1.5,1\n", "line 3: bad frame number"),
    (b"frame,AU1\n0,1\n-1,1\n", "line 3: bad frame number"),
    (b"frame,AU1\n0,1\n1,2\n", "line 3: bad value for AU1.*got 2"),
    (b"frame,AU1\n0,1\n1,-0.1\n", "line 3: bad value for AU1"),
    (b"frame,AU1\n0,1\n1,nan\n", "line 3: bad value for AU1"),
    (b"frame,AU1\n0,1\n0,1\n", "line 3: duplicate frame"),
    (b"frame,AU1\n0,1\n\n5,1\n3,0\n", "line 5: frames out of order"),
    (b"seq,frame,AU1\na,0,1\nb,0,1\na,0,1\n", "line 4: duplicate frame in sequence 'a'"),
    (b"seq,frame,AU1\n,0,1\n", "line 2: empty sequence name"),
    (b"AU1,AU2\n1,0\n", "unknown header"),
    (b"seq,AU1,AU2\na,1,0\n", "unknown header"),
    (b"frame,AU1,subject\n0,1,3\n", "column 3 is not an AU.*'subject'"),
    (b"frame,1,AU01\n0,1,1\n", "AU1 appears twice"),
    (b"frame\n0\n", "no AU columns"),
    (b"frame,AU1\n", "no data rows"),
    (b"\n\n", "no header"),
    (b"frame,AU1\n0,\xff\n", "not UTF-8"),
])
def test_frame_labels_refuse(tmp_path, text, pat):
    (tmp_path / "x.csv").write_bytes(text)
    with pytest.raises(InputError, match=pat) as e:
        read_frame_labels(tmp_path / "x.csv")
    assert one_line(e).startswith(str(tmp_path / "x.csv"))


def test_frame_labels_empty_and_missing(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_frame_labels(tmp_path / "e.csv")
    with pytest.raises(MissingInputError):
        read_frame_labels(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- ActivityNet JSON

def random_gt(rng, fps_per_seq=False):
    db, labels = {}, set()
    for i in range(5):
        dur = int(rng.integers(50, 400))
        events = []
        for _ in range(int(rng.integers(0, 6))):
            s = int(rng.integers(0, dur - 1))
            e = int(rng.integers(s + 1, dur + 1))
            lab = f"AU{int(rng.choice([1, 2, 12, 17]))}"
            events.append({"label": lab, "segment": [s, e]})
            labels.add(lab)
        fps = float(rng.choice([25.0, 30.0, 29.97])) if fps_per_seq else 25.0
        db[f"S{i:03d}_T{i % 8 + 1}"] = {"subset": "train" if i % 2 else "test", "duration_frames": dur,
                                      "fps": fps, "events": events}
    labels.add("AU1")
    db["S000_T1"]["events"].append({"label": "AU1", "segment": [0, 1]})
    return GroundTruth(db, sorted(labels, key=lambda a: int(a[2:])))


@pytest.mark.parametrize("units", ["seconds", "frames"])
@pytest.mark.parametrize("fps_per_seq", [False, True])
def test_gt_round_trip_exact(tmp_path, units, fps_per_seq):
    rng = np.random.default_rng(4)
    for _ in range(10):
        gt = random_gt(rng, fps_per_seq)
        write_gt(gt, tmp_path / "gt.json", units=units)
        back = read_gt(tmp_path / "gt.json")                   # units from the file
        assert back.db == gt.db and back.aus == gt.aus
        assert read_gt(tmp_path / "gt.json", units=units).db == gt.db
    raw = json.loads((tmp_path / "gt.json").read_text())
    assert set(raw) >= {"version", "taxonomy", "database"}
    entry = raw["database"]["S000_T1"]
    assert set(entry) == {"subset", "duration", "fps", "annotations"}


def test_gt_plain_activitynet_in_seconds(tmp_path):
    doc = {"version": "VERSION 1.3", "taxonomy": [], "database": {
        "v1": {"subset": "validation", "duration": 4.0,
               "annotations": [{"label": "12", "segment": [0.0, 0.8]}, {"label": "AU6", "segment": [1.02, 3.98]}]},
        "v2": {"subset": "validation", "duration": 2.0, "fps": 30, "annotations": [
            {"label": "au06", "segment": [0.5, 2.0]}]}}}
    (tmp_path / "g.json").write_text(json.dumps(doc))
    gt = read_gt(tmp_path / "g.json", fps=25.0)
    assert gt.aus == ["AU6", "AU12"]
    assert gt.db["v1"]["duration_frames"] == 100
    assert gt.db["v1"]["events"] == [{"label": "AU12", "segment": [0, 20]}, {"label": "AU6", "segment": [26, 100]}]
    assert gt.db["v2"] == {"subset": "validation", "duration_frames": 60, "fps": 30.0,
                           "events": [{"label": "AU6", "segment": [15, 60]}]}
    # frames: the same numbers are frame numbers
    doc["database"]["v1"]["duration"] = 100
    doc["database"]["v1"]["annotations"] = [{"label": "AU1", "segment": [10, 20]}]
    (tmp_path / "f.json").write_text(json.dumps(doc))
    assert read_gt(tmp_path / "f.json", units="frames").db["v1"]["events"] == [{"label": "AU1", "segment": [10, 20]}]


def _gt_doc(annotations, duration=4.0, **extra):
    return {"version": "1", "database": {"v": {"subset": "test", "duration": duration,
                                               "annotations": annotations, **extra}}}


@pytest.mark.parametrize("doc, pat", [
    (_gt_doc([{"label": "AU1", "segment": [2.0, 1.0]}]), r"sequence 'v', annotation 0 \(AU1\): end <= start"),
    (_gt_doc([{"label": "AU1", "segment": [1.0, 1.0]}]), "end <= start"),
    (_gt_doc([{"label": "AU1", "segment": [3.0, 4.5]}]), "segment outside the sequence"),
    (_gt_doc([{"label": "AU1", "segment": [-1.0, 1.0]}]), "segment outside the sequence"),
    (_gt_doc([{"label": "AU1", "segment": [1.0, 1.01]}]), "shorter than one frame"),
    (_gt_doc([{"label": "AU1", "segment": [1.0]}]), "bad segment"),
    (_gt_doc([{"label": "AU1", "segment": ["a", 2]}]), "bad segment"),
    (_gt_doc([{"label": "", "segment": [1, 2]}]), "bad label"),
    (_gt_doc([{"segment": [1, 2]}]), "bad label"),
    (_gt_doc([], duration=-1), "bad duration"),
    (_gt_doc([], duration=None), "bad duration"),
    (_gt_doc([], fps=0), "bad fps"),
    (_gt_doc({"label": "AU1"}), "not a list"),
    ({"version": "1", "database": {"v": []}}, "not an object"),
    ({"version": "1", "results": {}}, "not ActivityNet ground truth"),
    ([1, 2], "not ActivityNet ground truth"),
    ({**_gt_doc([]), "units": "hours"}, "unknown \"units\""),
])
def test_gt_refuses(tmp_path, doc, pat):
    (tmp_path / "g.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=pat) as e:
        read_gt(tmp_path / "g.json")
    assert one_line(e).startswith(str(tmp_path / "g.json"))


def test_gt_refuses_malformed_json_and_unit_mismatch(tmp_path):
    (tmp_path / "g.json").write_text('{"database": {"v": ')
    with pytest.raises(InputError, match="not valid JSON") as e:
        read_gt(tmp_path / "g.json")
    one_line(e)
    write_gt(GroundTruth({"v": {"subset": "", "duration_frames": 10, "fps": 25.0, "events": []}}, []),
             tmp_path / "f.json", units="frames")
    with pytest.raises(InputError, match="units mismatch"):
        read_gt(tmp_path / "f.json", units="seconds")
    with pytest.raises(InputError, match="unknown units"):
        read_gt(tmp_path / "f.json", units="ms")


def random_results(rng, gt):
    res = {}
    for seq, entry in gt.db.items():
        evs = []
        for _ in range(int(rng.integers(0, 5))):
            s = int(rng.integers(0, entry["duration_frames"] - 1))
            e = int(rng.integers(s + 1, entry["duration_frames"] + 1))
            evs.append({"label": str(rng.choice(gt.aus)), "segment": [s, e], "score": float(rng.random())})
        res[seq] = evs
    return res


@pytest.mark.parametrize("units", ["seconds", "frames"])
def test_results_round_trip_exact(tmp_path, units, stdin):
    rng = np.random.default_rng(5)
    for _ in range(10):
        gt = random_gt(rng, fps_per_seq=True)
        res = random_results(rng, gt)
        write_results(res, tmp_path / "r.json", units=units, gt=gt)
        assert read_results(tmp_path / "r.json", gt=gt) == res
        assert read_results(tmp_path / "r.json", units=units, gt=gt) == res
    raw = json.loads((tmp_path / "r.json").read_text())
    assert set(raw) >= {"version", "results", "external_data"}
    # without a ground truth the fps argument converts
    res = {"v": [{"label": "AU1", "segment": [3, 28], "score": 0.5}]}
    write_results(res, tmp_path / "r.json", units=units, fps=25.0)
    assert read_results(tmp_path / "r.json", fps=25.0) == res
    # JSON Lines records (frames) read back the same; stdin works
    recs = results_to_records(res)
    assert recs == [{"seq": "v", "label": "AU1", "segment": [3, 28], "score": 0.5}]
    stdin("".join(json.dumps(r) + "\n" for r in recs).encode())
    assert read_results("-") == res


def test_results_keep_fractional_frames(tmp_path):
    doc = {"version": "1", "results": {"v": [{"label": "AU1", "segment": [0.1, 0.5], "score": 0.5}]}}
    (tmp_path / "r.json").write_text(json.dumps(doc))
    got = read_results(tmp_path / "r.json", units="seconds", fps=25.0)
    assert got["v"][0]["segment"] == [pytest.approx(2.5), pytest.approx(12.5)]


GT = GroundTruth({"v": {"subset": "test", "duration_frames": 100, "fps": 25.0,
                        "events": [{"label": "AU1", "segment": [0, 10]}]}}, ["AU1"])


def _res(ev, seq="v"):
    return {"version": "1", "results": {seq: [ev]}, "external_data": {}}


@pytest.mark.parametrize("doc, pat", [
    (_res({"label": "AU1", "segment": [2.0, 1.0], "score": .5}), r"sequence 'v', event 0 \(AU1\): end <= start"),
    (_res({"label": "AU2", "segment": [0, 1], "score": .5}), "unknown label.*'AU2'"),
    (_res({"label": "AU1", "segment": [0, 1], "score": 1.5}), "bad score"),
    (_res({"label": "AU1", "segment": [0, 1], "score": -0.1}), "bad score"),
    (_res({"label": "AU1", "segment": [0, 1], "score": "0.5"}), "bad score"),
    (_res({"label": "AU1", "segment": [0, 1]}), "bad score"),
    (_res({"label": "AU1", "segment": [0, 1], "score": .5}, seq="w"), "sequence 'w': not in the ground truth"),
    (_res({"label": "AU1", "segment": [3.9, 4.1], "score": .5}), "segment outside the sequence"),
    (_res({"label": "AU1", "segment": [-0.1, 1], "score": .5}), "segment outside the sequence"),
    ({"version": "1", "results": []}, "\"results\" is not an object"),
    ({"version": "1", "results": {"v": {}}}, "not a list of events"),
    ({"database": {}}, "not an event record"),
])
def test_results_refuse(tmp_path, doc, pat):
    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=pat) as e:
        read_results(tmp_path / "r.json", gt=GT)
    assert one_line(e).startswith(str(tmp_path / "r.json"))


def test_results_refuse_nan_and_malformed(tmp_path):
    (tmp_path / "r.json").write_text('{"results": {"v": [{"label": "AU1", "segment": [0, 1], "score": NaN}]}}')
    with pytest.raises(InputError, match="bad score") as e:
        read_results(tmp_path / "r.json", gt=GT)
    one_line(e)
    (tmp_path / "r.json").write_text('{"results": {"v": [')
    with pytest.raises(InputError, match="not valid JSON") as e:
        read_results(tmp_path / "r.json")
    one_line(e)
    (tmp_path / "r.json").write_text('{"seq": "v", "label": "AU1", "segment": [0, 1], "score": 0.5}\n{oops\n')
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        read_results(tmp_path / "r.json")


# --------------------------------------------------------------------------- atomic writes

def test_failed_writes_leave_the_previous_file(tmp_path):
    dst = tmp_path / "out.json"
    dst.write_text("previous good output\n")
    bad_res = {"v": [{"label": "AU1", "segment": [0, float("nan")], "score": 0.5}]}
    with pytest.raises(InputError, match="sequence 'v', event 0: bad segment"):
        write_results(bad_res, dst)
    with pytest.raises(InputError, match="bad score"):
        write_results({"v": [{"label": "AU1", "segment": [0, 1], "score": 2.0}]}, dst)
    bad_gt = GroundTruth({"v": {"subset": "", "duration_frames": 10, "fps": 25.0,
                                "events": [{"label": "AU1", "segment": [0, float("inf")]}]}}, ["AU1"])
    with pytest.raises(InputError):
        write_gt(bad_gt, dst)
    with pytest.raises(InputError):
        write_frame_labels({"a": FrameLabels(np.arange(2), np.zeros((2, 1)), np.ones((2, 1), bool), ["AU1"]),
                            "b": FrameLabels(np.arange(2), np.zeros((2, 1)), np.ones((2, 1), bool), ["AU2"])}, dst)
    assert dst.read_text() == "previous good output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]        # no temp files left
    with pytest.raises(OutputError):
        write_gt(GT, tmp_path / "no" / "such" / "gt.json")


def test_write_to_stdout(capsysbinary):
    write_results({"v": [{"label": "AU1", "segment": [0, 25], "score": 1.0}]}, "-", units="seconds")
    out = json.loads(capsysbinary.readouterr().out)
    assert out["results"]["v"] == [{"label": "AU1", "segment": [0.0, 1.0], "score": 1.0}]
    assert out["units"] == "seconds" and out["external_data"] == {}


def test_writers_take_numpy_scalars(tmp_path):
    gt = GroundTruth({"v": {"subset": "test", "duration_frames": np.int64(50), "fps": np.float32(25.0),
                            "events": [{"label": "AU1", "segment": np.array([3, 9])}]}}, ["AU1"])
    write_gt(gt, tmp_path / "g.json")
    back = read_gt(tmp_path / "g.json")
    assert back.db["v"] == {"subset": "test", "duration_frames": 50, "fps": 25.0,
                            "events": [{"label": "AU1", "segment": [3, 9]}]}
    res = {"v": [{"label": "AU1", "segment": [np.int64(3), np.float32(9.5)], "score": np.float32(0.25)}]}
    write_results(res, tmp_path / "r.json", gt=back)
    assert read_results(tmp_path / "r.json", gt=back) == {"v": [{"label": "AU1", "segment": [3, 9.5], "score": 0.25}]}
    with pytest.raises(InputError, match="bad segment"):
        write_results({"v": [{"label": "AU1", "segment": np.array([3.0, np.nan]), "score": 0.5}]}, tmp_path / "r.json")

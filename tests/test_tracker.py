"""The tracker's behaviour on hand-made scenes: crossing objects, missed frames, class gates, scene starts; and the
Hungarian matcher against brute-force enumeration."""
import itertools

import numpy as np
import pytest

from perception3d.tracking import CENTERPOINT_GATES, CenterPointTracker, TrackingFrame, greedy_match, hungarian_match

DT = 0.5  # s between key frames
MATCHERS = ["greedy", "hungarian"]


def box(x, y, vx=0.0, vy=0.0, size=(4.5, 1.9, 1.6)):
    return [x, y, 0.0, *size, np.arctan2(vy, vx) if (vx or vy) else 0.0, vx, vy]


def frame(i, boxes, names, scores=None, scene="scene-a", voxel_xy=None):
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 9)
    scores = np.linspace(0.9, 0.6, len(boxes)) if scores is None else np.asarray(scores, dtype=np.float64)
    return TrackingFrame(token=f"{scene}-{i}", scene_token=scene, timestamp=1_000_000 + int(i * DT * 1e6),
                         boxes=boxes, scores=scores, names=list(names), voxel_xy=voxel_xy)


def ids_by_x_order(out):
    return out.ids[np.argsort(out.boxes[:, 0])].tolist()


@pytest.mark.parametrize("matcher", MATCHERS)
@pytest.mark.parametrize("voxel_association", [False, True])
def test_crossing_objects_keep_their_ids(matcher, voxel_association):
    """Two cars meet head-on in neighbouring lanes 1 m apart, each moving 3 m per frame: by nearest centre alone
    they would swap ids as they pass; each keeps its id because each detection is moved back by its own velocity
    before matching."""
    tracker = CenterPointTracker(matcher=matcher, voxel_association=voxel_association)
    history = {}
    for i in range(12):
        t = i * DT
        a = box(-13.5 + 6 * t, 0.5, 6, 0)  # eastbound
        b = box(13.5 - 6 * t, -0.5, -6, 0)  # westbound; they pass each other between frames 4 and 5
        boxes = np.array([a, b])
        # the lower score goes first every other frame, so greedy order cannot carry the ids by itself
        out = tracker.update(frame(i, boxes, ["car", "car"], scores=[0.8, 0.9] if i % 2 else [0.9, 0.8],
                                   voxel_xy=boxes[:, :2] + 0.3))
        assert len(out.ids) == 2
        for row, track_id in zip(out.boxes, out.ids):
            key = "a" if row[7] > 0 else "b"
            history.setdefault(key, set()).add(int(track_id))
    assert len(history["a"]) == len(history["b"]) == 1 and history["a"] != history["b"]


@pytest.mark.parametrize("matcher", MATCHERS)
@pytest.mark.parametrize("max_age", [1, 3])
def test_object_missed_for_up_to_max_age_frames_keeps_its_id(matcher, max_age):
    """A moving car is missed for k frames: it comes back under its id while k <= max_age (its track coasts on
    the velocity meanwhile, and is not output), under a new one after; a parked car beside it is never lost."""
    for missed in range(1, max_age + 3):
        tracker = CenterPointTracker(max_age=max_age, matcher=matcher)
        moving_ids = []
        for i in range(missed + 4):
            moving = box(-20 + 10 * i * DT, 3.0, 10.0, 0.0)
            parked = box(0.0, -3.0)
            hidden = 1 <= i <= missed
            boxes = [parked] if hidden else [moving, parked]
            out = tracker.update(frame(i, boxes, ["car"] * len(boxes)))
            assert len(out.ids) == len(boxes)  # coasting tracks are not output
            if not hidden:
                moving_ids.append(int(out.ids[np.argmax(out.boxes[:, 1])]))
        kept = len(set(moving_ids)) == 1
        assert kept == (missed <= max_age), (missed, moving_ids)


@pytest.mark.parametrize("name", sorted(CENTERPOINT_GATES))
@pytest.mark.parametrize("matcher", MATCHERS)
def test_class_gates_hold(name, matcher):
    """A detection that lands beside where its track's velocity puts it is matched within the class's gate (95 %
    of it) and starts a new track beyond it (105 %); another class at the very same place never matches."""
    gate = CENTERPOINT_GATES[name]
    for fraction, same in [(0.95, True), (1.05, False)]:
        tracker = CenterPointTracker(matcher=matcher)
        first = tracker.update(frame(0, [box(0, 0, 2, 0)], [name]))
        second = tracker.update(frame(1, [box(2 * DT, fraction * gate, 2, 0)], [name]))
        assert (first.ids[0] == second.ids[0]) == same, fraction
    tracker = CenterPointTracker(matcher=matcher)
    first = tracker.update(frame(0, [box(0, 0, 2, 0)], [name]))
    other = next(n for n in sorted(CENTERPOINT_GATES) if n != name)
    second = tracker.update(frame(1, [box(2 * DT, 0, 2, 0)], [other]))
    assert second.ids[0] != first.ids[0]


def test_classes_without_a_gate_are_not_tracked_and_scenes_start_afresh():
    tracker = CenterPointTracker()
    out = tracker.update(frame(0, [box(0, 0), box(5, 5)], ["car", "barrier"]))
    assert out.names == ["car"] and out.ids.tolist() == [0]
    out = tracker.update(frame(1, [box(0, 0)], ["car"], scene="scene-b"))
    assert out.ids.tolist() == [0]  # ids restart with the scene, nothing carried over
    out = tracker.update(frame(0, [box(0, 0)], ["car"], scene="scene-c"))
    assert out.ids.tolist() == [0]


def test_birth_score_and_bad_input():
    tracker = CenterPointTracker(birth_score=0.5)
    out = tracker.update(frame(0, [box(0, 0), box(10, 0)], ["car", "car"], scores=[0.9, 0.3]))
    assert len(out.ids) == 1 and out.scores[0] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="not after the previous frame"):
        tracker.update(frame(0, [box(0, 0)], ["car"]))
    with pytest.raises(ValueError, match="voxel association needs voxel_xy"):
        CenterPointTracker(voxel_association=True).update(frame(0, [box(0, 0)], ["car"]))
    with pytest.raises(ValueError, match="matcher"):
        CenterPointTracker(matcher="auction")


def brute_force_assignment(cost):
    """All partial matchings of finite pairs: the largest ones, then the least total cost among them."""
    n, m = cost.shape
    best = (0, 0.0, [])
    for k in range(min(n, m), 0, -1):
        for dets in itertools.combinations(range(n), k):
            for tracks in itertools.permutations(range(m), k):
                pairs = list(zip(dets, tracks))
                if all(np.isfinite(cost[d, t]) for d, t in pairs):
                    total = sum(cost[d, t] for d, t in pairs)
                    if k > best[0] or (k == best[0] and total < best[1]):
                        best = (k, total, pairs)
        if best[0] == k:
            break
    return best


def test_hungarian_equals_brute_force_on_random_gated_costs(rng):
    for _ in range(200):
        n, m = rng.integers(0, 5, size=2)
        cost = rng.uniform(0, 4, (n, m))
        cost[rng.random((n, m)) < 0.4] = np.inf
        pairs = hungarian_match(cost)
        count, total, _ = brute_force_assignment(cost)
        assert len(pairs) == count
        assert sum(cost[d, t] for d, t in pairs) == pytest.approx(total)
        assert len({d for d, _ in pairs}) == len({t for _, t in pairs}) == len(pairs)


def test_greedy_takes_the_nearest_free_track_in_the_given_order():
    cost = np.array([[1.0, 0.5], [0.4, np.inf], [np.inf, np.inf]])
    assert greedy_match(cost, [0, 1, 2]) == [(0, 1), (1, 0)]
    assert greedy_match(cost, [1, 0, 2]) == [(1, 0), (0, 1)]
    assert greedy_match(np.array([[0.2], [0.1]]), [0, 1]) == [(0, 0)]  # the first in order wins, not the nearest
    assert greedy_match(np.zeros((2, 0)), [0, 1]) == []

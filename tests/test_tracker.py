"""The tracker's behaviour on hand-made scenes: crossing objects, missed frames, class gates, scene starts; and the
Hungarian matcher against brute-force enumeration."""
import itertools

import numpy as np
import pytest

from perception3d.tracking import (CENTERPOINT_GATES, CenterPointTracker, ConstantVelocityFilter, TrackingFrame,
                                   gated_distances, greedy_match, hungarian_match)

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
@pytest.mark.parametrize("motion", [ConstantVelocityFilter(), None])
def test_object_missed_for_up_to_max_age_frames_keeps_its_id(matcher, max_age, motion):
    """A moving car is missed for k frames: it comes back under its id while k <= max_age (its track coasts on
    the velocity meanwhile, and is not output), under a new one after; a parked car beside it is never lost."""
    for missed in range(1, max_age + 3):
        tracker = CenterPointTracker(max_age=max_age, matcher=matcher, motion=motion)
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
@pytest.mark.parametrize("motion", ["kalman", "centerpoint"])
def test_class_gates_hold(name, matcher, motion):
    """A detection that lands beside where its track's velocity puts it is matched within the class's gate (95 %
    of it) and starts a new track beyond it (105 %); another class at the very same place never matches. With the
    Kalman filter the gate is widened by the track's predicted uncertainty (its gate_margin), computed here from
    the filter's covariance after one detection and one step."""
    kwargs = {"matcher": matcher} if motion == "kalman" else {"matcher": matcher, "motion": None}
    gate = CENTERPOINT_GATES[name]
    if motion == "kalman":
        f = ConstantVelocityFilter()
        var_p = f.position ** 2 + DT ** 2 * f.velocity ** 2 + f.acceleration ** 2 * DT ** 4 / 4
        gate += np.sqrt(var_p) - f.position
    for fraction, same in [(0.95, True), (1.05, False)]:
        tracker = CenterPointTracker(**kwargs)
        first = tracker.update(frame(0, [box(0, 0, 2, 0)], [name]))
        second = tracker.update(frame(1, [box(2 * DT, fraction * gate, 2, 0)], [name]))
        assert (first.ids[0] == second.ids[0]) == same, fraction
    tracker = CenterPointTracker(**kwargs)
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
        dets, tracks = hungarian_match(cost)
        count, total, _ = brute_force_assignment(cost)
        assert len(dets) == count
        assert cost[dets, tracks].sum() == pytest.approx(total)
        assert len(set(dets.tolist())) == len(set(tracks.tolist())) == len(dets)


def test_greedy_takes_the_nearest_free_track_in_the_given_order():
    cost = np.array([[1.0, 0.5], [0.4, np.inf], [np.inf, np.inf]])
    def pairs(cost, order):
        dets, tracks = greedy_match(cost, order)
        return list(zip(dets.tolist(), tracks.tolist()))

    assert pairs(cost, [0, 1, 2]) == [(0, 1), (1, 0)]
    assert pairs(cost, [1, 0, 2]) == [(1, 0), (0, 1)]
    assert pairs(np.array([[0.2], [0.1]]), [0, 1]) == [(0, 0)]  # the first in order wins, not the nearest
    assert pairs(np.zeros((2, 0)), [0, 1]) == []


def test_kalman_filter_equals_a_textbook_four_state_filter(rng):
    """The per-axis filter against the plain matrix form: state (x, y, vx, vy), F = [[I, dt I], [0, I]], white
    acceleration Q, H = I and R = diag(position², position², velocity², velocity²), over random steps and
    detections, for three tracks at once."""
    f = ConstantVelocityFilter(position=0.3, velocity=0.7, acceleration=1.5)
    tracks = 3
    z0 = rng.normal(0, 5, (tracks, 4))
    xy, velocity, cov = z0[:, :2].copy(), z0[:, 2:].copy(), np.tile(f.start_cov, (tracks, 1))
    state = z0.copy()
    big_p = np.stack([np.diag([f.position ** 2] * 2 + [f.velocity ** 2] * 2)] * tracks)
    r = np.diag([f.position ** 2] * 2 + [f.velocity ** 2] * 2)
    eye = np.eye(2)
    for _ in range(20):
        dt = rng.uniform(0.05, 1.5)
        f.predict(xy, velocity, cov, dt)
        big_f = np.block([[eye, dt * eye], [0 * eye, eye]])
        q = f.acceleration ** 2 * np.block([[dt ** 4 / 4 * eye, dt ** 3 / 2 * eye], [dt ** 3 / 2 * eye, dt ** 2 * eye]])
        state = state @ big_f.T
        big_p = big_f @ big_p @ big_f.T + q
        rows = np.flatnonzero(rng.random(tracks) < 0.7)  # some tracks get a detection this step
        z = rng.normal(0, 5, (len(rows), 4))
        f.correct(xy, velocity, cov, rows, z[:, :2], z[:, 2:])
        for i, t in enumerate(rows):
            gain = big_p[t] @ np.linalg.inv(big_p[t] + r)
            state[t] = state[t] + gain @ (z[i] - state[t])
            big_p[t] = (np.eye(4) - gain) @ big_p[t]
        np.testing.assert_allclose(np.column_stack([xy, velocity]), state, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(cov, big_p[:, [0, 0, 2], [0, 2, 2]], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("matcher", MATCHERS)
def test_kalman_motion_learns_velocity_from_positions(matcher):
    """A pedestrian walks 1.6 m/s but its detections say 0 m/s (as a detector that has not learned velocity does)
    and it is missed for 2 frames: the filter has learned its velocity from its positions and finds it again
    1.6 m × 1.5 s away; CenterPoint's rule, which trusts the detection's velocity, loses it against the 1 m gate."""
    for motion, kept in [(ConstantVelocityFilter(), True), (None, False)]:
        tracker = CenterPointTracker(matcher=matcher, motion=motion)
        ids = []
        for i in range(12):
            if i in (8, 9):
                continue
            out = tracker.update(frame(i, [box(1.6 * i * DT, 0.0, 0.0, 0.0, size=(0.7, 0.7, 1.8))], ["pedestrian"]))
            ids.append(int(out.ids[0]))
        assert (len(set(ids)) == 1) == kept, (motion, ids)


def test_gated_distances_equal_a_numpy_reference(rng):
    for _ in range(50):
        n, m, classes = rng.integers(0, 30), rng.integers(0, 30), rng.integers(1, 8)
        det_xy, track_xy = rng.uniform(-5, 5, (n, 2)), rng.uniform(-5, 5, (m, 2))
        det_class, track_class = rng.integers(0, classes, n), rng.integers(0, classes, m)
        gate, margin = rng.uniform(0.5, 4, classes), rng.uniform(0, 1, m)
        dist = np.sqrt(((det_xy[:, None] - track_xy[None]) ** 2).sum(-1))
        valid = (det_class[:, None] == track_class[None]) & (dist <= gate[det_class][:, None] + margin[None])
        np.testing.assert_array_equal(gated_distances(det_xy, det_class, track_xy, track_class, gate, margin),
                                      np.where(valid, dist, np.inf))
        valid = (det_class[:, None] == track_class[None]) & (dist <= gate[det_class][:, None])
        np.testing.assert_array_equal(gated_distances(det_xy, det_class, track_xy, track_class, gate),
                                      np.where(valid, dist, np.inf))

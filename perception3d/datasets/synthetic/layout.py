"""Layout of one synthetic scene: a curving street, the ego's drive, objects and clutter.

Everything is placed in street coordinates (s: arc length along the ego's path,
d: lateral offset, left positive) and turned into global x, y, yaw through the
path. Right-hand traffic: the ego lane is centred on d = 0, a second lane in the
same direction at d = 3.5, two oncoming lanes at d = 7 and 10.5; each side has a
bike lane, a parking lane, a curb with poles and trees, a sidewalk and walls.
Every object is built from primitives that stay inside its annotation box.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
from scipy.spatial import cKDTree

from ..lidarseg import CATEGORY_INDEX
from .lidar import BOX, CYLINDER, SPHERE

# detection class → (mean length, width, height in m), [(nuScenes category, weight)]
CLASS_SPECS = {
    "car": ((4.63, 1.96, 1.74), [("vehicle.car", 1.0)]),
    "truck": ((6.93, 2.51, 2.84), [("vehicle.truck", 1.0)]),
    "construction_vehicle": ((6.37, 2.85, 3.19), [("vehicle.construction", 1.0)]),
    "bus": ((10.5, 2.94, 3.47), [("vehicle.bus.rigid", 0.85), ("vehicle.bus.bendy", 0.15)]),
    "trailer": ((12.29, 2.90, 3.87), [("vehicle.trailer", 1.0)]),
    "barrier": ((0.50, 2.53, 0.98), [("movable_object.barrier", 1.0)]),
    "motorcycle": ((2.11, 0.77, 1.47), [("vehicle.motorcycle", 1.0)]),
    "bicycle": ((1.70, 0.60, 1.28), [("vehicle.bicycle", 1.0)]),
    "pedestrian": ((0.73, 0.67, 1.77), [("human.pedestrian.adult", 0.85), ("human.pedestrian.child", 0.05),
                                         ("human.pedestrian.construction_worker", 0.10)]),
    "traffic_cone": ((0.41, 0.41, 1.07), [("movable_object.trafficcone", 1.0)]),
}
VEHICLES = ("car", "truck", "construction_vehicle", "bus", "trailer")
CYCLES = ("motorcycle", "bicycle")

LANE_WIDTH = 3.5
SIDE_ORIGINS = ((-1, -LANE_WIDTH / 2), (1, 3.5 * LANE_WIDTH))  # (sign, d of the outer lane edge) right, left
# lateral offsets outward from the side origin (m), chosen so that no two objects ever overlap:
# bike lane 0-1.5, parking lane 1.5-4.3 (construction zones: barriers or cones at 1.7, machines and
# workers at 3.55), curb line with poles and trees at 4.6, bike racks at 5.25, three walking lines,
# people standing, bushes, walls
BIKE, PARKING, ZONE_LINE, ZONE_WORK, POLES, RACKS = 0.75, 2.9, 1.7, 3.55, 4.6, 5.25
WALK, STAND, BUSH, WALL = (6.0, 6.9, 7.8), 8.7, 10.0, 11.0
# what the ground is, by lateral offset outward from the side origin (m): the lanes, bike and parking lanes are
# driveable surface up to the curb (the parking lane's outer edge), then sidewalk (curb line, racks, walking
# and standing lines), then terrain (bushes, walls and beyond)
CURB, SIDEWALK_END = 4.3, 9.4
ANNOTATION_RANGE = 75.0  # an object is annotated at a key frame when its centre is this close to the ego (m)
EGO_SIZE = (1.8, 1.7, 1.1)  # roof block under LIDAR_TOP, 0.3-1.4 m above ground: its returns lie within 1 m of the sensor


@dataclass
class Shape:
    """Primitives of an object in its box frame (x forward, origin at the box centre)."""

    kinds: np.ndarray  # (K,) int64
    params: np.ndarray  # (K, 8) float64 in the box frame, BOX yaw given as cos, sin
    reflectivity: float


@dataclass
class SceneObject:
    """One annotated object and its motion, sampled at the scene's LiDAR times."""

    cls: str
    category: str
    size: np.ndarray  # (3,) length, width, height (m)
    xy: np.ndarray  # (F, 2) global centre per LiDAR frame
    yaw: np.ndarray  # (F,) global heading
    speed: np.ndarray  # (F,) m/s
    parked: bool
    rider: bool
    shape: Shape


@dataclass
class SceneLayout:
    """Everything the LiDAR and the annotation writer need for one scene."""

    times: np.ndarray  # (F,) s from the first key frame
    key_frames: np.ndarray  # (K,) indices into times
    ego_xy: np.ndarray  # (F, 2)
    ego_yaw: np.ndarray  # (F,)
    objects: List[SceneObject]
    clutter_kinds: np.ndarray  # (Q,) static primitives in the global frame
    clutter_params: np.ndarray  # (Q, 8)
    clutter_reflectivity: np.ndarray  # (Q,)
    clutter_category: np.ndarray  # (Q,) int64 nuScenes-lidarseg category index of each primitive
    path: Optional["StreetPath"] = None  # the street, which says what the ground is where
    origin: np.ndarray = field(default_factory=lambda: np.zeros(2))  # global offset of the scene


def lidar_times(seconds: float = 20.0, lidar_hz: float = 20.0, key_hz: float = 2.0) -> Tuple[np.ndarray, np.ndarray]:
    """LiDAR sweep times (s) and the indices of key frames: 10 sweeps precede the first key frame."""
    per_key = int(round(lidar_hz / key_hz))
    n_keys = int(round(seconds * key_hz))
    frames = np.arange(per_key * (n_keys + 1))  # per_key sweeps before the first key frame
    times = (frames - per_key) / lidar_hz
    return times, np.arange(per_key, per_key * (n_keys + 1), per_key)


class StreetPath:
    """A smooth curve x(s), y(s), heading(s) sampled every metre."""

    def __init__(self, rng: np.random.Generator, s_min: float, s_max: float, start_xy, start_heading: float):
        self.s = np.arange(np.floor(s_min), np.ceil(s_max) + 1.0)
        amp = rng.uniform(0.0, 1 / 120, size=2)
        wavelength = rng.uniform(150.0, 500.0, size=2)
        phase = rng.uniform(0, 2 * np.pi, size=2)
        curvature = sum(a * np.sin(2 * np.pi * self.s / w + p) for a, w, p in zip(amp, wavelength, phase))
        heading = np.concatenate([[0.0], np.cumsum((curvature[1:] + curvature[:-1]) / 2)])
        heading += start_heading - np.interp(0.0, self.s, heading)
        x = np.concatenate([[0.0], np.cumsum(np.cos((heading[1:] + heading[:-1]) / 2))])
        y = np.concatenate([[0.0], np.cumsum(np.sin((heading[1:] + heading[:-1]) / 2))])
        self.x = x - np.interp(0.0, self.s, x) + start_xy[0]
        self.y = y - np.interp(0.0, self.s, y) + start_xy[1]
        self.heading = heading

    def pose(self, s: np.ndarray, d: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Street coordinates → global (…, 2) xy and the path heading at s."""
        h = np.interp(s, self.s, self.heading)
        x = np.interp(s, self.s, self.x) - np.sin(h) * d
        y = np.interp(s, self.s, self.y) + np.cos(h) * d
        return np.stack([x, y], axis=-1), h

    def lateral_offset(self, xy: np.ndarray) -> np.ndarray:
        """float64 (N,) street coordinate d of global (N, 2) points: the offset from the nearest point of the
        path, left positive (the path is locally straight at its 1 m sampling: curvature under 1/60 m)."""
        if getattr(self, "_tree", None) is None:
            self._tree = cKDTree(np.stack([self.x, self.y], axis=1))
        nearest = self._tree.query(xy)[1]
        h = self.heading[nearest]
        along = (xy[:, 0] - self.x[nearest]) * np.cos(h) + (xy[:, 1] - self.y[nearest]) * np.sin(h)
        foot, h = self.pose(self.s[nearest] + along, np.zeros(len(xy)))
        return -(xy[:, 0] - foot[:, 0]) * np.sin(h) + (xy[:, 1] - foot[:, 1]) * np.cos(h)

    def ground_category(self, xy: np.ndarray) -> np.ndarray:
        """int64 (N,) lidarseg category index of the ground at global (N, 2) points: flat.driveable_surface
        between the curbs, flat.sidewalk up to SIDEWALK_END, flat.terrain beyond."""
        d = self.lateral_offset(xy)
        (right_sign, right_edge), (left_sign, left_edge) = SIDE_ORIGINS
        outward = np.maximum((d - right_edge) * right_sign, (d - left_edge) * left_sign)  # < 0 between the sides
        return np.select([outward < CURB, outward < SIDEWALK_END],
                         [CATEGORY_INDEX["flat.driveable_surface"], CATEGORY_INDEX["flat.sidewalk"]],
                         CATEGORY_INDEX["flat.terrain"]).astype(np.int64)


def _box(cx, cy, cz, lx, ly, lz, yaw=0.0):
    return BOX, [cx, cy, cz, lx / 2, ly / 2, lz / 2, np.cos(yaw), np.sin(yaw)]


def _cyl(cx, cy, z0, z1, r):
    return CYLINDER, [cx, cy, z0, z1, r, 0, 0, 0]


def _sphere(cx, cy, cz, r):
    return SPHERE, [cx, cy, cz, r, 0, 0, 0, 0]


def object_shape(cls: str, size: np.ndarray, rider: bool, rng: np.random.Generator) -> Shape:
    """Primitives of an object of class ``cls`` and size (l, w, h) inside its box (box frame, z = 0 at centre)."""
    l, w, h = size
    z0 = -h / 2  # ground
    parts = []
    if cls == "car":
        parts += [_box(0, 0, z0 + 0.35 * h, l, w, 0.5 * h), _box(-0.08 * l, 0, z0 + 0.8 * h, 0.55 * l, 0.9 * w, 0.4 * h)]
    elif cls == "truck":
        parts += [_box(0.39 * l, 0, z0 + 0.5 * h, 0.22 * l, w, 0.8 * h), _box(-0.11 * l, 0, z0 + 0.58 * h, 0.78 * l, w, 0.84 * h)]
    elif cls == "construction_vehicle":
        parts += [_box(0, 0, z0 + 0.3 * h, l, w, 0.5 * h), _box(-0.15 * l, 0, z0 + 0.75 * h, 0.35 * l, 0.8 * w, 0.5 * h),
                  _box(0.3 * l, 0, z0 + 0.7 * h, 0.4 * l, 0.25 * w, 0.2 * h)]
    elif cls == "bus":
        parts += [_box(0, 0, z0 + 0.55 * h, l, w, 0.9 * h)]
    elif cls == "trailer":
        parts += [_box(0, 0, z0 + 0.62 * h, l, w, 0.76 * h), _box(-0.4 * l, 0, z0 + 0.12 * h, 0.15 * l, 0.9 * w, 0.24 * h)]
    elif cls == "barrier":
        parts += [_box(0, 0, z0 + 0.45 * h, 0.6 * l, w, 0.9 * h)]
    elif cls == "traffic_cone":
        parts += [_cyl(0, 0, z0, z0 + 0.35 * h, 0.45 * min(l, w)), _cyl(0, 0, z0 + 0.35 * h, z0 + 0.95 * h, 0.25 * min(l, w))]
    elif cls in CYCLES:
        parts += [_box(0, 0, z0 + 0.32 * h, l, 0.3 * w, 0.6 * h)]
        if rider:
            parts += [_cyl(-0.1 * l, 0, z0 + 0.4 * h, z0 + 0.9 * h, 0.4 * w), _sphere(-0.1 * l, 0, z0 + 0.92 * h, 0.08 * h)]
    elif cls == "pedestrian":
        r = 0.32 * min(l, w)
        head = 0.065 * h
        parts += [_cyl(0, 0, z0, z0 + h - 2 * head, r), _sphere(0, 0, z0 + h - head, head)]
    else:
        raise ValueError(f"unknown class {cls!r}")
    kinds = np.array([k for k, _ in parts], dtype=np.int64)
    params = np.array([p for _, p in parts], dtype=np.float64)
    reflect = {"barrier": (60, 160), "traffic_cone": (90, 220), "pedestrian": (8, 30)}.get(cls, (10, 60))
    return Shape(kinds, params, float(rng.uniform(*reflect)))


def shape_to_global(shape: Shape, xy: np.ndarray, z_centre: float, yaw: float) -> Tuple[np.ndarray, np.ndarray]:
    """Primitives of ``shape`` placed at (xy, z_centre, yaw) in the global frame."""
    c, s = np.cos(yaw), np.sin(yaw)
    p = shape.params.copy()
    lx, ly = shape.params[:, 0], shape.params[:, 1]
    p[:, 0] = xy[0] + c * lx - s * ly
    p[:, 1] = xy[1] + s * lx + c * ly
    is_box = shape.kinds == BOX
    p[is_box, 2] += z_centre
    p[shape.kinds == SPHERE, 2] += z_centre
    cyl = shape.kinds == CYLINDER
    p[cyl, 2:4] += z_centre
    bc, bs = shape.params[is_box, 6], shape.params[is_box, 7]
    p[is_box, 6] = c * bc - s * bs
    p[is_box, 7] = s * bc + c * bs
    return shape.kinds, p


class _Builder:
    """Places the objects of one scene along its street."""

    def __init__(self, rng, path: StreetPath, times: np.ndarray, ego_s: np.ndarray):
        self.rng, self.path, self.times, self.ego_s = rng, path, times, ego_s
        self.objects: List[SceneObject] = []

    def size_of(self, cls: str, category: str) -> np.ndarray:
        mean = np.array(CLASS_SPECS[cls][0])
        size = mean * np.exp(self.rng.normal(0.0, 0.08, size=3))
        if category == "vehicle.bus.bendy":
            size[0] *= 1.6
        if category == "human.pedestrian.child":
            size *= 0.7
        return size

    def category_of(self, cls: str) -> str:
        names, weights = zip(*CLASS_SPECS[cls][1])
        return names[self.rng.choice(len(names), p=np.array(weights) / sum(weights))]

    def add(self, cls, s0, d, speed=0.0, *, facing=0.0, parked=False, rider=False, wobble=0.0,
            category: Optional[str] = None, from_start: bool = False) -> SceneObject:
        """An object at street position (s0, d) at t = 0 moving along the street at ``speed`` m/s.

        With ``from_start``, s0 is where the object begins along the street rather than its centre.
        """
        category = category or self.category_of(cls)
        size = self.size_of(cls, category)
        if from_start:
            s0 += (abs(np.cos(facing)) * size[0] + abs(np.sin(facing)) * size[1]) / 2
        t = self.times
        s = s0 + speed * t
        lateral = np.full_like(t, d)
        if speed != 0.0:  # smooth speed and lateral variation: a turn rate of their own
            period = self.rng.uniform(6.0, 14.0)
            phase = self.rng.uniform(0, 2 * np.pi)
            s = s + 0.08 * abs(speed) * period / (2 * np.pi) * np.sin(2 * np.pi * t / period + phase)
            lateral = lateral + wobble * np.sin(2 * np.pi * t / (1.3 * period) + phase)
        xy, heading = self.path.pose(s, lateral)
        direction = 1.0 if speed >= 0 else -1.0
        yaw = heading + (0.0 if direction > 0 else np.pi) + facing
        if speed != 0.0:  # face the direction of travel
            vel = np.gradient(xy, t, axis=0)
            moving = np.linalg.norm(vel, axis=1) > 0.05
            yaw = np.where(moving, np.arctan2(vel[:, 1], vel[:, 0]) + facing, yaw)
            spd = np.linalg.norm(vel, axis=1)
        else:
            spd = np.zeros_like(t)
        obj = SceneObject(cls, category, size, xy, np.unwrap(yaw), spd, parked, rider,
                          object_shape(cls, size, rider, self.rng))
        self.objects.append(obj)
        return obj

    def span(self, speed: float, margin: float = 90.0) -> Tuple[float, float]:
        """Range of s0 for which an object moving at ``speed`` passes near the ego during the scene."""
        rel = self.ego_s - speed * self.times
        return float(rel.min() - margin), float(rel.max() + margin)

    def fill_line(self, lo: float, hi: float, mean_gap: float, make) -> None:
        """Calls make(s) at positions from lo to hi separated by the returned length plus a random gap."""
        s = lo + self.rng.uniform(0, mean_gap)
        while s < hi:
            length = make(s)
            s += length + self.rng.exponential(mean_gap)


def _pick(rng, options):
    names, weights = zip(*options)
    return names[rng.choice(len(names), p=np.array(weights, dtype=float) / sum(weights))]


def build_scene(rng: np.random.Generator, origin_xy: np.ndarray) -> SceneLayout:
    """Draws one scene: the ego's drive, traffic, parked objects, pedestrians, construction and clutter."""
    times, key_frames = lidar_times()
    mode = _pick(rng, [("cruise", 0.6), ("slow", 0.25), ("stopped", 0.15)])
    ego_speed = {"cruise": rng.uniform(6.0, 12.0), "slow": rng.uniform(1.5, 5.0), "stopped": 0.0}[mode]
    period = rng.uniform(8.0, 16.0)
    ego_s = ego_speed * times + 0.1 * ego_speed * period / (2 * np.pi) * np.sin(2 * np.pi * times / period)
    span = 250.0 + 15.0 * max(ego_speed, 10.0) * times[-1]
    path = StreetPath(rng, -span, span + ego_s[-1], origin_xy, rng.uniform(-np.pi, np.pi))
    ego_xy, ego_yaw = path.pose(ego_s, np.zeros_like(ego_s))
    b = _Builder(rng, path, times, ego_s)

    traffic = [("car", 0.78), ("truck", 0.08), ("bus", 0.06), ("motorcycle", 0.05), ("construction_vehicle", 0.03)]
    # moving lanes: (d, speed)
    lanes = [(0.0, ego_speed), (LANE_WIDTH, ego_speed * rng.uniform(0.6, 1.4) if ego_speed > 0 else 0.0),
             (2 * LANE_WIDTH, -rng.uniform(4.0, 12.0) if rng.random() > 0.15 else 0.0),
             (3 * LANE_WIDTH, -rng.uniform(4.0, 12.0) if rng.random() > 0.15 else 0.0)]
    for d, speed in lanes:
        lo, hi = b.span(speed)
        if d == 0.0:  # keep the ego's own lane clear around the ego
            segments = [(lo, -12.0), (12.0, hi)]
        else:
            segments = [(lo, hi)]
        for seg_lo, seg_hi in segments:
            def make(s, d=d, speed=speed):
                cls = _pick(rng, traffic)
                obj = b.add(cls, s, d, speed, wobble=0.15, from_start=True)
                return obj.size[0] + 4.0
            b.fill_line(seg_lo, seg_hi, rng.uniform(10.0, 30.0), make)

    all_zones: List[Tuple[int, float, float]] = []
    drive = (float(ego_s.min()) - 20.0, float(ego_s.max()) + 20.0)  # the stretch the ego sees up close
    barriers_right = rng.random() < 0.5
    for side, (sign, edge) in enumerate(SIDE_ORIGINS):
        at = lambda off: edge + sign * off  # noqa: E731
        lo, hi = b.span(0.0)
        # construction zones replace stretches of the parking lane: every scene has one lined with barriers
        # on one side and one with traffic cones on the other along the ego's drive, sometimes one more
        zones = []
        for k in range(1 + int(rng.random() < 0.4)):
            z0 = rng.uniform(*drive) if k == 0 else rng.uniform(lo, hi)
            barrier_line = (barriers_right == (side == 0)) if k == 0 else rng.random() < 0.5
            zones.append((z0, z0 + rng.uniform(20.0, 50.0), barrier_line))
        all_zones += [(sign, z0, z1) for z0, z1, _ in zones]
        blocked = [(z0 - 8, z1 + 8) for z0, z1, _ in zones]
        if side == 0:  # and a parked trailer along the drive
            for reach in (0.0, 30.0, 60.0, 120.0):  # nearest the drive where the zones leave room
                free = [s for s in np.linspace(drive[0] - reach, drive[1] + reach, 400)
                        if not any(a - 8 <= s <= c + 8 for a, c in blocked)]
                if free:
                    break
            s_trailer = float(rng.choice(free))
            trailer = b.add("trailer", s_trailer, at(PARKING), facing=rng.normal(0, 0.03), parked=True)
            blocked.append((s_trailer - trailer.size[0] / 2 - 6, s_trailer + trailer.size[0] / 2 + 1))
        in_zone = lambda s: any(a <= s <= c for a, c in blocked)  # noqa: E731
        for z0, z1, barrier_line in zones:
            s = z0
            while s < z1:
                if barrier_line:
                    s += b.add("barrier", s, at(ZONE_LINE), facing=np.pi / 2, from_start=True).size[1]
                    s += rng.uniform(0.1, 0.5)
                else:
                    s += b.add("traffic_cone", s, at(ZONE_LINE), from_start=True).size[0] + rng.uniform(2.0, 4.5)

            def work(s, at=at):
                if rng.random() < 0.4:
                    return b.add("construction_vehicle", s, at(ZONE_WORK), facing=rng.normal(0, 0.05),
                                 parked=True, from_start=True).size[0] + 1.0
                b.add("pedestrian", s, at(ZONE_WORK), facing=rng.uniform(-np.pi, np.pi),
                      category="human.pedestrian.construction_worker")
                return 2.0
            b.fill_line(z0, z1 - 8.0, 6.0, work)

        def park(s, at=at, in_zone=in_zone):
            if in_zone(s) or rng.random() < 0.35:
                return 6.0
            cls = _pick(rng, [("car", 0.8), ("truck", 0.07), ("trailer", 0.06), ("bus", 0.02),
                              ("construction_vehicle", 0.02), ("motorcycle", 0.03)])
            obj = b.add(cls, s, at(PARKING), facing=rng.normal(0, 0.05) + (np.pi if rng.random() < 0.5 else 0.0),
                        parked=True, from_start=True)
            return obj.size[0] + 1.0
        b.fill_line(lo, hi, 3.0, park)

        # cyclists ride in the bike lane, in the direction of the traffic beside them
        bike_speed = rng.uniform(3.0, 6.0) * (1.0 if sign < 0 else -1.0)
        blo, bhi = b.span(bike_speed)

        def ride(s, bike_speed=bike_speed, at=at):
            cls = "bicycle" if rng.random() < 0.7 else "motorcycle"
            obj = b.add(cls, s, at(BIKE), bike_speed, rider=True, wobble=0.1, from_start=True)
            return obj.size[0] + 8.0
        b.fill_line(blo, bhi, 40.0, ride)

        # parked bicycles in a row at racks on the sidewalk's curb side
        for s in rng.uniform(lo, hi, size=rng.integers(1, 4)):
            for k in range(rng.integers(1, 5)):
                b.add("bicycle", s + 2.2 * k, at(RACKS), facing=rng.normal(0, 0.05), parked=True, from_start=True)

        # pedestrians walk along sidewalk sub-lanes or stand by the walls
        for off in WALK:
            speed = rng.choice([-1, 1]) * rng.uniform(0.8, 1.6)
            wlo, whi = b.span(speed)

            def walk(s, off=off, speed=speed, at=at):
                b.add("pedestrian", s, at(off), speed, wobble=0.05)
                return rng.uniform(3.0, 10.0)
            b.fill_line(wlo, whi, 25.0, walk)

        def stand(s, at=at):
            for k in range(rng.integers(1, 4)):
                b.add("pedestrian", s + 1.0 * k, at(STAND), facing=rng.uniform(-np.pi, np.pi))
            return 3.0
        b.fill_line(lo, hi, 25.0, stand)

    clutter = _clutter(rng, path, *b.span(0.0), zones=all_zones)
    return SceneLayout(times, key_frames, ego_xy, np.unwrap(ego_yaw), b.objects, *clutter, path=path,
                       origin=np.asarray(origin_xy))


def _clutter(rng, path: StreetPath, lo: float, hi: float, zones):
    """Walls, poles, trees and bushes along both sides (no poles in construction zones): global primitives, their
    reflectivities and lidarseg categories (walls and poles static.manmade; tree trunks, crowns and bushes
    static.vegetation, as nuScenes-lidarseg labels trunks)."""
    kinds: List[int] = []
    params: List[list] = []
    refl: List[float] = []
    category: List[int] = []

    def put(kind_params, reflectivity, name):
        kinds.append(kind_params[0])
        params.append(kind_params[1])
        refl.append(reflectivity)
        category.append(CATEGORY_INDEX[name])

    for sign, edge in SIDE_ORIGINS:
        at = lambda off: edge + sign * off  # noqa: E731
        s = lo
        while s < hi:  # wall segments with gaps
            length = rng.uniform(6.0, 18.0)
            if rng.random() < 0.8:
                mid = s + length / 2
                xy, h = path.pose(np.array([mid]), np.array([at(WALL + 0.3)]))
                height = rng.uniform(3.0, 12.0)
                put(_box(xy[0, 0], xy[0, 1], height / 2, length, 0.6, height, h[0]), rng.uniform(15, 45),
                    "static.manmade")
            s += length + rng.uniform(0.5, 8.0)
        s = lo + rng.uniform(0, 10)
        while s < hi:  # poles and trees on the curb line
            if any(zs == sign and z0 - 8 <= s <= z1 + 8 for zs, z0, z1 in zones):
                s += 5.0
                continue
            xy, _ = path.pose(np.array([s]), np.array([at(POLES)]))
            x, y = xy[0]
            if rng.random() < 0.5:
                put(_cyl(x, y, 0.0, rng.uniform(3.0, 8.0), rng.uniform(0.08, 0.2)), rng.uniform(30, 70),
                    "static.manmade")
            else:
                r = rng.uniform(1.2, 2.2)
                put(_cyl(x, y, 0.0, 4.2, rng.uniform(0.12, 0.25)), rng.uniform(8, 20), "static.vegetation")
                put(_sphere(x, y, 4.0 + r + rng.uniform(0, 1.0), r), rng.uniform(5, 15), "static.vegetation")
            s += rng.uniform(12.0, 35.0)
        s = lo + rng.uniform(0, 10)
        while s < hi:  # bushes by the walls
            xy, _ = path.pose(np.array([s]), np.array([at(BUSH + rng.uniform(-0.1, 0.1))]))
            put(_sphere(xy[0, 0], xy[0, 1], rng.uniform(0.0, 0.4), rng.uniform(0.5, 0.85)), rng.uniform(5, 15),
                "static.vegetation")
            s += rng.uniform(4.0, 25.0)
    return (np.array(kinds, dtype=np.int64), np.array(params, dtype=np.float64), np.array(refl, dtype=np.float64),
            np.array(category, dtype=np.int64))

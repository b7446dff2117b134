"""docs/inference.md: run its ``<!-- tested -->`` blocks as a user would and check what they make.

The marked ```bash / ```python blocks run in the page's order, each in a fresh process from the
repository root, with ``OUT`` (the folder every block writes under) in a temporary folder and
the checkpoint cache (``MMUNSUP3D_CACHE_DIR``) there too, so nothing is written into the
checkout or the home folder. Then the outputs are checked: the regenerated sample input, the
3D JSON / PNGs / GIF of ``demo/lift_demo.py``, and that the API path, ``lift_demo.py`` and the
MMPose path (converted checkpoint + ``init_model``) give the same 3D within 1e-5 m with the
recommended model; and, for the optional confidence-aware model, that MMPose with the scores
carried through its pipeline equals the API with scores while MMPose's API (scores dropped)
differs.
"""
import json
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, List, Tuple

import numpy as np
import pytest

from conftest import REPO

DOC = osp.join(REPO, 'docs', 'inference.md')
SAMPLE = osp.join(REPO, 'demo', 'data', 'mmpose_preds_walk.json')
# The recommended model (first metafile entry) that the main commands use, and its alias.
MODEL, ALIAS = 'unsup3d_reslifter-2ddisc-tdisc-lsgan-betas05_1xb256-200e_pybullet-mocap', \
    'unsup3d'
# The optional confidence-aware model of the page's secondary subsection.
CONF_MODEL, CONF_ALIAS = 'unsup3d_reslifter-2ddisc-tdisc-conf_1xb256-100e_pybullet-mocap', \
    'unsup3d-conf'
# API vs lift_demo vs MMPose, metres (the doc's claim; lift_demo and the API round to 1e-6).
ATOL_M = 1e-5
# The tested blocks, in the page's order: what each one is (guards against a lost marker).
EXPECTED_BLOCKS = [
    ('bash', 'mocap_to_mmpose_preds.py'),
    ('bash', 'demo/lift_demo.py'),
    ('python', 'lift_keypoints('),
    ('bash', 'convert_to_mmpose_lifter.py'),
    ('python', 'inference_pose_lifter_model('),
    ('bash', 'download unsup3d-conf'),
    ('python', 'keypoints_visible=s[None]'),
]
# One person in each of the sample's 6 frames; the simulated detector failure.
NUM_FRAMES = 6
FAILED_FRAME, FAILED_COCO_JOINT, FAILED_H36M_JOINT, FAILED_SCORE = 3, 9, 13, 0.08

_FENCE = re.compile(r'^```(\w*)\s*$')


def doc_blocks(text: str) -> List[Tuple[str, str, str]]:
    """Fenced blocks of a Markdown page with the HTML comment on the line before each.

    Args:
        text: the page.

    Returns:
        ``(marker, language, code)`` per block; ``marker`` is the comment's text (``''`` when
        the previous line is not a comment).

    Raises:
        ValueError: a fence is never closed.
    """
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        prev = lines[i - 1].strip() if i else ''
        marker = prev[4:-3].strip() if prev.startswith('<!--') and prev.endswith('-->') else ''
        end = i + 1
        while end < len(lines) and not lines[end].startswith('```'):
            end += 1
        if end == len(lines):
            raise ValueError(f'unclosed ``` fence opened at line {i + 1}')
        blocks.append((marker, m.group(1), '\n'.join(lines[i + 1:end]) + '\n'))
        i = end + 1
    return blocks


def test_doc_blocks_parses_markers_and_rejects_an_unclosed_fence():
    text = ('intro\n<!-- tested -->\n```bash\necho a\n```\n\n```python\nx = 1\n```\n'
            '<!-- not tested: needs weights -->\n```python\ny = 2\n```\n')
    assert doc_blocks(text) == [('tested', 'bash', 'echo a\n'), ('', 'python', 'x = 1\n'),
                                ('not tested: needs weights', 'python', 'y = 2\n')]
    with pytest.raises(ValueError, match='unclosed ``` fence opened at line 2'):
        doc_blocks('text\n```bash\necho a\n')


def _tested_blocks() -> List[Tuple[str, str]]:
    with open(DOC, encoding='utf-8') as f:
        blocks = doc_blocks(f.read())
    return [(lang, code) for marker, lang, code in blocks if marker == 'tested']


@pytest.fixture(scope='module')
def doc_run(tmp_path_factory) -> Dict[str, object]:
    """Run the tested blocks in order; return ``OUT`` and each block's stdout."""
    root = tmp_path_factory.mktemp('inference_doc')
    out = str(root / 'out')
    env = dict(os.environ)
    env.update(OUT=out, MMUNSUP3D_CACHE_DIR=str(root / 'cache'), OMP_NUM_THREADS='1',
               MPLBACKEND='Agg',
               # `python` in the blocks is this interpreter (the project's venv).
               PATH=osp.dirname(sys.executable) + os.pathsep + env.get('PATH', ''))
    env.pop('MMUNSUP3D_ZOO_URL', None)  # the committed zoo files, not a mirror
    stdouts = []
    for lang, code in _tested_blocks():
        cmd = ['bash', '-euo', 'pipefail', '-c', code] if lang == 'bash' else \
            [sys.executable, '-c', code]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f'doc block failed:\n{code}\nSTDOUT\n' \
                                     f'{proc.stdout[-3000:]}\nSTDERR\n{proc.stderr[-5000:]}'
        stdouts.append(proc.stdout)
    return dict(out=out, stdouts=stdouts)


@pytest.fixture
def zoo_cache(tmp_path, monkeypatch):
    """Zoo downloads of this process go to a temporary cache, not the home folder."""
    monkeypatch.setenv('MMUNSUP3D_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.delenv('MMUNSUP3D_ZOO_URL', raising=False)


def _load(path: str):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _instances_3d(doc: dict) -> np.ndarray:
    return np.array([inst['keypoints_3d'] for frame in doc['frames']
                     for inst in frame['instances']])


# --------------------------------------------------------------------------- the page itself
def test_page_marks_the_expected_blocks_and_the_download_ones_untested():
    blocks = _tested_blocks()
    assert [lang for lang, _ in blocks] == [lang for lang, _ in EXPECTED_BLOCKS]
    for (lang, code), (_, needle) in zip(blocks, EXPECTED_BLOCKS):
        assert needle in code, (needle, code)
        # Every tested block writes under the redirectable OUT folder.
        assert ('OUT=${OUT:-work_dirs/inference_demo}' in code if lang == 'bash' else
                "os.environ.get('OUT', 'work_dirs/inference_demo')" in code), code
    with open(DOC, encoding='utf-8') as f:
        all_blocks = doc_blocks(f.read())
    untested = [code for marker, _, code in all_blocks if marker.startswith('not tested')]
    # The 2D model download and MMPoseInferencer(pose3d=..., pose2d=...) cannot run offline.
    assert len(untested) == 2
    assert any('pose3d=' in code and "pose2d='human'" in code for code in untested)


def test_page_recommends_the_metafiles_first_model_and_its_commands_use_it():
    from mmengine.config import Config
    from mmunsup3d.utils.zoo import list_models, resolve_model
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    assert 'python -m mmunsup3d list' in text
    # The metafile's first entry is the recommended one; the page says so at the top.
    assert list_models()[0] == MODEL and resolve_model(ALIAS)['name'] == MODEL
    top = text[:text.index('## 0.')]
    assert f'**Recommended model: `{ALIAS}`** (`{MODEL}`' in top
    # Zoo names: the recommended model, and the confidence-aware one only in its subsection.
    assert set(re.findall(r'unsup3d_reslifter[\w-]+', text)) == {MODEL, CONF_MODEL}
    start = text.index('### Optional: per-joint 2D scores')
    end = text.index('\n## ', start)
    assert CONF_MODEL not in text[:start] + text[end:]
    assert resolve_model(CONF_ALIAS)['name'] == CONF_MODEL
    # The main tested blocks run the recommended model (alias or name), the last two the
    # confidence-aware one.
    blocks = [code for _, code in _tested_blocks()]
    assert '--checkpoint unsup3d --video gif' in blocks[1]
    assert f"MODEL = '{ALIAS}'" in blocks[2] and 'init_lifter(MODEL' in blocks[2]
    assert f'MODEL={MODEL}' in blocks[3] and 'download unsup3d)' in blocks[3]
    assert f'download {CONF_ALIAS}' in blocks[5] and f"init_lifter('{CONF_ALIAS}'" in blocks[6]
    assert CONF_ALIAS not in ''.join(blocks[:5])
    # Convert blocks pass --config configs/unsup3d/<name>.py: the entries' own configs.
    for name in (MODEL, CONF_MODEL):
        assert resolve_model(name)['config'] == osp.join(REPO, 'configs', 'unsup3d', f'{name}.py')
    # (x, y) input for the recommended model, (x, y, score) for the confidence-aware one.
    assert Config.fromfile(resolve_model(MODEL)['config']).model.lifter.in_channels == 2
    assert Config.fromfile(resolve_model(CONF_MODEL)['config']).model.lifter.in_channels == 3


def _github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def test_github_anchor_rule():
    assert _github_anchor("Scores through MMPose's APIs") == 'scores-through-mmposes-apis'
    assert _github_anchor('COCO-17 to Human3.6M-17') == 'coco-17-to-human36m-17'


def test_page_links_resolve():
    """Relative links point at files, and #anchors (here and in linked pages) at headings."""
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    links = re.findall(r'\]\(([^)\s]+)\)', text)
    assert links
    for link in links:
        path, _, anchor = link.partition('#')
        target = DOC if not path else osp.normpath(osp.join(osp.dirname(DOC), path))
        assert osp.exists(target), link
        if anchor:
            with open(target, encoding='utf-8') as f:
                headings = [line.lstrip('#') for line in f if line.startswith('#')]
            assert anchor in {_github_anchor(h) for h in headings}, link


# --------------------------------------------------------------------------- the sample input
def test_committed_sample_is_small_mmpose_video_predictions():
    assert osp.getsize(SAMPLE) < 50 * 1024
    frames = _load(SAMPLE)
    assert [f['frame_id'] for f in frames] == list(range(NUM_FRAMES))
    for frame in frames:
        (inst, ) = frame['instances']
        assert np.array(inst['keypoints']).shape == (17, 2)
        assert np.array(inst['keypoint_scores']).shape == (17, )
        assert np.array(inst['bbox']).shape == (1, 4) and inst['bbox_score'] == 1.0
    scores = np.array([f['instances'][0]['keypoint_scores'] for f in frames])
    assert scores[FAILED_FRAME, FAILED_COCO_JOINT] == FAILED_SCORE
    others = np.delete(scores.ravel(), FAILED_FRAME * 17 + FAILED_COCO_JOINT)
    assert 0.8 <= others.min() and others.max() <= 0.98


def test_sample_is_the_walk_test_split_in_coco17():
    """Body joints of the sample = the dataset's Human3.6M-17 2D (noise of ~1.5 px aside)."""
    from mmunsup3d.datasets import MocapProjectionDataset
    from mmunsup3d.structures import COCO_TO_H36M_DIRECT
    arrays = MocapProjectionDataset(split='test', clips=['walk']).arrays
    # Test camera 0, test frames 51, 53, ..., 61 of the 64-frame clip (last 13 frames).
    rows = [list(arrays['img_paths']).index(f'mocap_walk.cam0_{f:06d}.jpg')
            for f in range(51, 63, 2)]
    h36m = arrays['keypoints_2d'][rows]
    coco = np.array([f['instances'][0]['keypoints'] for f in _load(SAMPLE)])
    # Knees, ankles, shoulders, elbows, wrists are copied joints (the wrist that failed aside).
    for h, c in COCO_TO_H36M_DIRECT.items():
        if h in (1, 4):  # hips: annotator-like COCO hips, moved on purpose
            continue
        err = np.linalg.norm(coco[:, c] - h36m[:, h], axis=-1)
        if c == FAILED_COCO_JOINT:
            assert err[FAILED_FRAME] > 20.0
            err = np.delete(err, FAILED_FRAME)
        assert err.max() < 8.0, (h, c, err)


# --------------------------------------------------------------------------- the doc's outputs
def test_regenerated_sample_is_identical(doc_run):
    assert 'same as the committed file' in doc_run['stdouts'][0]
    with open(osp.join(doc_run['out'], 'mmpose_preds_walk.json'), 'rb') as f, \
            open(SAMPLE, 'rb') as g:
        assert f.read() == g.read()


def test_lift_demo_writes_3d_json_pngs_and_gif(doc_run):
    from PIL import Image
    folder = osp.join(doc_run['out'], 'lift_demo')
    doc = _load(osp.join(folder, 'keypoints_3d.json'))
    assert doc['input_format'] == 'mmpose_video' and doc['checkpoint'] == ALIAS
    assert len(doc['frames']) == NUM_FRAMES
    poses = _instances_3d(doc)
    assert poses.shape == (NUM_FRAMES, 17, 3) and np.isfinite(poses).all()
    assert np.abs(poses[:, 0]).max() <= 1e-6  # root-relative
    lows = [f['instances'][0]['low_confidence'] for f in doc['frames']]
    assert lows == [[FAILED_H36M_JOINT] if i == FAILED_FRAME else [] for i in range(NUM_FRAMES)]
    assert 0.0 <= doc['chirality_rate'] <= 1.0
    assert f'{100 * doc["chirality_rate"]:.1f} % of 6 lifted poses' in doc_run['stdouts'][1]
    for i in range(NUM_FRAMES):
        with Image.open(osp.join(folder, f'frame_{i:06d}.png')) as im:
            assert im.size == (1350, 480)  # three panels at the default --dpi 100
    with Image.open(osp.join(folder, 'animation.gif')) as gif:
        assert gif.n_frames == NUM_FRAMES and gif.size == (1350, 480)


def test_api_block_equals_lift_demo(doc_run):
    api = _load(osp.join(doc_run['out'], 'api', 'keypoints_3d.json'))
    demo = _load(osp.join(doc_run['out'], 'lift_demo', 'keypoints_3d.json'))
    assert [f['frame_id'] for f in api['frames']] == list(range(NUM_FRAMES))
    a, d = _instances_3d(api), _instances_3d(demo)
    assert a.shape == d.shape == (NUM_FRAMES, 17, 3)
    assert np.abs(a - d).max() <= ATOL_M
    for fa, fd in zip(api['frames'], demo['frames']):
        (ia, ), (id_, ) = fa['instances'], fd['instances']
        assert ia['low_confidence'] == id_['low_confidence']
        assert np.abs(np.array(ia['keypoints_2d']) - np.array(id_['keypoints_2d'])).max() <= 1e-3
    assert api['chirality_rate'] == demo['chirality_rate']
    assert f'{NUM_FRAMES} poses, chirality rate' in doc_run['stdouts'][2]


def _sample_h36m() -> Tuple[np.ndarray, np.ndarray]:
    """The sample's Human3.6M-17 2D and scores after the page's fallbacks: (6, 17, 2), (6, 17)."""
    from mmunsup3d.structures import coco_to_h36m, fill_low_confidence
    frames = _load(SAMPLE)
    coco = np.array([f['instances'][0]['keypoints'] for f in frames])
    coco_scores = np.array([f['instances'][0]['keypoint_scores'] for f in frames])
    kpts, scores = coco_to_h36m(coco, coco_scores, 0.3)
    kpts, _, valid = fill_low_confidence(kpts, scores, 0.3)
    assert valid.all()
    return kpts, scores


def test_mmpose_path_equals_api_for_the_recommended_model(doc_run, zoo_cache):
    from mmunsup3d.apis import init_lifter, lift_keypoints
    out = doc_run['out']
    assert osp.isfile(osp.join(out, 'mmpose', 'lifter.pth'))
    assert osp.isfile(osp.join(out, 'mmpose', 'lifter.py'))
    ref = _instances_3d(_load(osp.join(out, 'api', 'keypoints_3d.json')))
    mm = np.array(_load(osp.join(out, 'mmpose', 'keypoints_3d.json'))['keypoints_3d'])
    assert mm.shape == ref.shape == (NUM_FRAMES, 17, 3)
    assert np.abs(mm - ref).max() <= ATOL_M
    # The API block's output is the recommended model's, not a look-alike.
    kpts, _ = _sample_h36m()
    model = init_lifter(MODEL)  # cache: a temporary folder (the zoo_cache fixture)
    assert np.abs(lift_keypoints(model, kpts) - ref).max() <= ATOL_M


def test_conf_subsection_mmpose_with_scores_equals_api_and_without_differs(doc_run, zoo_cache):
    from mmunsup3d.apis import init_lifter, lift_keypoints
    folder = osp.join(doc_run['out'], 'mmpose_conf')
    assert osp.isfile(osp.join(folder, 'lifter.pth'))
    assert osp.isfile(osp.join(folder, 'lifter.py'))
    res = _load(osp.join(folder, 'keypoints_3d.json'))
    api, with_scores, no_scores = (np.array(res[k]) for k in ('api', 'with_scores', 'no_scores'))
    assert api.shape == with_scores.shape == no_scores.shape == (NUM_FRAMES, 17, 3)
    # MMPose with the scores carried by the pipeline equals the API with scores ...
    assert np.abs(with_scores - api).max() <= ATOL_M
    kpts, scores = _sample_h36m()
    model = init_lifter(CONF_MODEL)
    assert np.abs(api - lift_keypoints(model, kpts, scores)).max() <= ATOL_M
    # ... MMPose's API equals lift_keypoints on the same 2D without scores ...
    assert np.abs(no_scores - lift_keypoints(model, kpts)).max() <= ATOL_M
    # ... and differs from the confidence-aware result: the page's pitfall is real.
    assert np.abs(no_scores - with_scores).max() > 1e-3


def test_recommended_model_ignores_scores(zoo_cache):
    """The page says the scores do not change unsup3d's output (2-channel input)."""
    from mmunsup3d.apis import init_lifter, lift_keypoints
    kpts, scores = _sample_h36m()
    model = init_lifter(ALIAS)
    assert np.array_equal(lift_keypoints(model, kpts, scores), lift_keypoints(model, kpts))


# --------------------------------------------------------------------------- the pitfalls
def test_head_top_rules_differ_as_the_page_says(zoo_cache):
    """coco_to_h36m vs MMPose's convert_keypoint_definition on the sample (39 vs 55 px)."""
    from mmpose.apis import convert_keypoint_definition
    from mmunsup3d.apis import init_lifter, lift_keypoints
    from mmunsup3d.structures import coco_to_h36m
    frames = _load(SAMPLE)
    coco = np.array([f['instances'][0]['keypoints'] for f in frames])
    ours, _ = coco_to_h36m(coco, None)
    theirs = convert_keypoint_definition(coco, 'coco', 'h36m')
    differs = np.abs(ours - theirs).max(axis=(0, 2)) > 1e-9
    assert np.flatnonzero(differs).tolist() == [10]  # the head top only
    mid_eyes = coco[:, [1, 2]].mean(1)
    assert np.abs(theirs[:, 10] - mid_eyes).max() < 1e-9
    # Head top = mid-eyes + 2 (mid-eyes - nose).
    assert np.abs(ours[:, 10] - (mid_eyes + 2 * (mid_eyes - coco[:, 0]))).max() < 1e-9

    def head(k):
        return np.linalg.norm(k[:, 10] - k[:, 8], axis=-1).mean()

    assert round(head(theirs)) == 39 and round(head(ours)) == 55
    model = init_lifter(MODEL)
    gap = np.linalg.norm(lift_keypoints(model, ours) - lift_keypoints(model, theirs), axis=-1)
    # The page's number (one decimal) is what the recommended model gives.
    with open(DOC, encoding='utf-8') as f:
        page = re.search(r'`unsup3d` lifts differs by ([0-9.]+) mm per joint', f.read())
    assert page, 'the page no longer quotes the head-top gap'
    assert abs(1000 * gap.mean() - float(page.group(1))) < 0.05, (1000 * gap.mean(), page[1])


def test_output_scale_is_the_head_prior(doc_run):
    """Pelvis to head top is 0.72 m in every pose (model.test_cfg.output_head_root)."""
    poses = _instances_3d(_load(osp.join(doc_run['out'], 'api', 'keypoints_3d.json')))
    assert np.allclose(np.linalg.norm(poses[:, 10] - poses[:, 0], axis=-1), 0.72, atol=1e-5)

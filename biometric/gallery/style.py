"""The one style sheet of the staff pages (``/ui/static/style.css``) and of the self-contained
HTML screening report, which inlines it: both look the same."""

from __future__ import annotations

CSS = """\
:root {
  --ink: #1d2330; --muted: #535b6b; --bg: #f4f5f7; --card: #fff; --brand: #1d3557;
  --line: #d5d9e0; --focus: #f4a261;
  --match: #1b7f3b; --match-bg: #e3f4e8; --nomatch: #b3261e; --nomatch-bg: #fbe6e4;
  --retake: #8a5a00; --retake-bg: #fff3d6;
  font-size: 16px;
}
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  background: var(--bg); color: var(--ink); line-height: 1.4; }
header.bar { background: var(--brand); color: #fff; padding: .8rem 1.5rem; display: flex;
  flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; justify-content: space-between; }
header.bar h1 { font-size: 1.35rem; margin: 0; }
header.bar .who { font-size: .95rem; display: flex; gap: .8rem; align-items: center; }
header.bar button { background: transparent; color: #fff; border-color: #fff8; }
main { padding: 1rem 1.5rem 2rem; max-width: 1100px; margin: 0 auto; }
h2 { font-size: 1.15rem; margin: 1.2rem 0 .6rem; }
.card { background: var(--card); border-radius: 8px; padding: 1rem; margin: .8rem 0;
  box-shadow: 0 1px 3px #0002; }
.note, .hint { color: var(--muted); font-size: .9rem; }
label { font-weight: 600; display: block; margin: .4rem 0 .2rem; }
input, select, textarea, button { font: inherit; }
input[type=text], input[type=password], input[type=number], select, textarea {
  border: 1px solid var(--line); border-radius: 6px; padding: .45rem .6rem; width: 100%;
  max-width: 28rem; background: #fff; color: var(--ink); }
textarea { min-height: 3.2rem; }
button { border: 1px solid var(--brand); background: #fff; color: var(--brand);
  border-radius: 6px; padding: .5rem 1rem; cursor: pointer; font-weight: 600; }
button.primary { background: var(--brand); color: #fff; }
button.big { font-size: 1.15rem; padding: .7rem 1.6rem; }
button.danger { border-color: var(--nomatch); color: var(--nomatch); }
button:disabled { opacity: .5; cursor: not-allowed; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.row { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-end; }
.row > * { flex: 0 1 auto; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 1rem; }
.error { color: var(--nomatch); font-weight: 600; }
.status-line { min-height: 1.4em; }
.hidden { display: none !important; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
/* decision banner */
.decision { border-radius: 10px; padding: 1rem 1.2rem; font-size: 2.4rem; font-weight: 800;
  letter-spacing: .03em; text-align: center; border: 3px solid currentColor; }
.decision.match { color: var(--match); background: var(--match-bg); }
.decision.no_match { color: var(--nomatch); background: var(--nomatch-bg); }
.decision.retake { color: var(--retake); background: var(--retake-bg); }
.decision.refused, .decision.chip_untrusted { color: #fff; background: var(--nomatch); }
.decision.manual_check { color: var(--retake); background: var(--retake-bg); }
/* a face decision on a chip that was not verified: amber, never the verified green */
.decision.unverified { color: var(--retake); background: var(--retake-bg);
  border: 4px dashed var(--retake); }
.chip-banner { font-size: 1.1rem; font-weight: 700; color: var(--retake);
  background: var(--retake-bg); border-left: 6px solid var(--retake); padding: .5rem .8rem; }
.sources { margin: .3rem 0; }
/* file pickers: the native button is hidden (it speaks the browser's language, not the page's) */
input.file-input { position: absolute; width: 1px; height: 1px; opacity: 0; }
label.file-pick { display: inline-block; border: 1px solid var(--brand); border-radius: 6px;
  padding: .4rem .8rem; margin: .3rem 0; color: var(--brand); background: #fff; cursor: pointer;
  font-weight: 600; }
input.file-input:focus-visible + label.file-pick { outline: 3px solid var(--focus); }
.raw { color: var(--muted); font-size: .85rem; }
.decision small { display: block; font-size: 1rem; font-weight: 600; letter-spacing: 0; }
ul.reasons { font-size: 1.1rem; font-weight: 600; color: var(--retake); }
.meter { height: .8rem; background: #e6e8ec; border-radius: 4px; position: relative;
  margin: .4rem 0; max-width: 28rem; }
.meter .fill { height: 100%; border-radius: 4px; background: var(--brand); }
.meter .mark { position: absolute; top: -.3rem; bottom: -.3rem; width: 3px;
  background: var(--ink); }
table.kv { border-collapse: collapse; }
table.kv td, table.kv th { padding: .2rem .8rem .2rem 0; text-align: left; vertical-align: top; }
table.summary td { padding: .2rem .8rem .2rem 0; }
canvas.photo, video.photo { width: 100%; max-width: 480px; height: auto; max-height: 420px;
  object-fit: contain; background: #222; border-radius: 6px; display: block; }
[tabindex="-1"]:focus { outline: none; }
/* guided capture: face boxes and one instruction over the camera view */
.camera { position: relative; width: 100%; max-width: 480px; }
.camera .overlay { position: absolute; left: 0; top: 0; pointer-events: none; }
.camera .guide { position: absolute; left: 0; right: 0; bottom: 0; margin: 0; padding: .5rem;
  background: #000a; color: #fff; font-size: 1.35rem; font-weight: 700; text-align: center;
  border-radius: 0 0 6px 6px; min-height: 1.4em; }
.camera .guide[data-kind=countdown], .camera .guide[data-kind=good] { background: #1e8449e6; }
label.check { font-weight: 400; display: flex; gap: .4rem; align-items: center; }
header.bar label.lang { display: flex; gap: .4rem; align-items: center; margin: 0;
  font-weight: 400; }
header.bar select { width: auto; padding: .15rem .3rem; }
/* a pair of faces with the score between them (review queue and screening report) */
.pair { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; background: var(--card);
  border-radius: 8px; padding: .8rem; margin: .6rem 0; box-shadow: 0 1px 3px #0002; }
.pair figure { margin: 0; text-align: center; max-width: 13rem; }
.pair img, .pair .no-photo { width: 160px; height: 160px; object-fit: cover; border-radius: 6px;
  background: #ddd; }
.pair .no-photo { display: flex; align-items: center; justify-content: center; color: var(--muted);
  font-size: .9rem; border: 2px dashed #b8bdc7; background: #eceef1; padding: .5rem; }
.pair figcaption { font-size: .9rem; margin-top: .3rem; }
.pair figcaption b { font-size: 1rem; font-variant-numeric: tabular-nums; }
.score { font-size: 1.4rem; font-weight: 700; min-width: 7rem; text-align: center; }
.score small { display: block; font-size: .8rem; font-weight: 400; color: var(--muted); }
.case-actions { flex: 1 1 16rem; min-width: 14rem; }
.case-actions .row { margin-top: .5rem; }
.pill { display: inline-block; padding: .1rem .6rem; border-radius: 999px; font-size: .85rem;
  font-weight: 700; background: #e6e8ec; }
.pill.open { background: var(--retake-bg); color: var(--retake); }
.pill.confirmed { background: var(--nomatch-bg); color: var(--nomatch); }
.pill.dismissed { background: var(--match-bg); color: var(--match); }
/* chip signature (passive authentication) beside the chip photo */
fieldset { min-width: 0; border: 1px solid #d0d4da; border-radius: 8px; padding: .4rem .8rem;
  margin: .8rem 0 0; }
input[type=file] { max-width: 100%; }
#chip-auth-detail { overflow-wrap: anywhere; }
.pill.chip-ok { background: var(--match-bg); color: var(--match); }
.pill.chip-failed { background: var(--nomatch-bg); color: var(--nomatch); }
.pill.chip-unchecked { background: var(--retake-bg); color: var(--retake); }
@media (max-width: 600px) {
  main { padding: .6rem .7rem 1.5rem; }
  header.bar { padding: .6rem .8rem; }
  .decision { font-size: 1.8rem; }
  .pair { justify-content: center; }
  .pair img, .pair .no-photo { width: 130px; height: 130px; }
  button.big { width: 100%; }
}
"""

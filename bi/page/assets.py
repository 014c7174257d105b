"""The page's stylesheet and scripts, inlined into every page.

CSS colours stay clear of the chart colours (bi.page.charts): a screenshot pixel in a chart
colour must come from a chart. `.js` is set on <html> by the first script of the body; every rule
that hides content needs it, so a reader without JavaScript sees every quarter, one after the
other.
"""

from __future__ import annotations

CSS = """
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; padding: 0 32px 48px; background: #f5f6f8; color: #1f2933;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main, .page-head { max-width: 1400px; }
.page-head { padding: 20px 0 12px; margin-bottom: 12px; border-bottom: 1px solid #dde1e6; }
.js .page-head { position: sticky; top: 0; z-index: 5; background: #f5f6f8; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0; }
h3 { font-size: 17px; margin: 0; }
h4 { font-size: 15px; margin: 0 0 8px; }
.subtitle, .meta, .kr-meta, .note, .tree-meta { color: #52606d; }
.controls { display: none; gap: 18px; flex-wrap: wrap; align-items: center; margin: 10px 0 4px; }
.js .controls { display: flex; }
.controls label { font-size: 13px; font-weight: 600; color: #323f4b; }
.controls select { margin-left: 6px; font: inherit; font-weight: 400; padding: 3px 6px;
  border: 1px solid #b8c2cc; border-radius: 6px; background: #ffffff; max-width: 260px; }
.filter-status { font-size: 13px; color: #52606d; }
.quarter-links { margin: 8px 0 0; font-size: 13px; }
.quarter-links a { margin-right: 10px; }
.js .quarter-links { display: none; }
.legend { display: flex; gap: 18px; flex-wrap: wrap; margin-top: 8px; font-size: 12px; color: #52606d; }
.legend .swatch { display: inline-block; width: 18px; height: 10px; vertical-align: middle;
  margin-right: 4px; border-radius: 2px; }
.legend .marker-swatch { display: inline-block; width: 3px; height: 14px; background: #111827;
  vertical-align: middle; margin-right: 4px; }
section.quarter { margin-bottom: 40px; }
.js section.quarter:not(.active) { display: none; }
.quarter-head { display: flex; align-items: baseline; gap: 14px; flex-wrap: wrap; margin: 8px 0 14px; }
.objective, .kpi, .alignment { background: #ffffff; border: 1px solid #dde1e6; border-radius: 8px;
  padding: 16px 20px; margin-bottom: 16px; }
.objectives { max-width: 1240px; }
.obj-head { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.meta { margin: 4px 0 10px; font-size: 13px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; background: #e4e7eb; color: #323f4b; }
.badge.status-achieved { background: #d3f2dc; color: #0b4d22; }
.badge.status-on_track { background: #e3f6e8; color: #135c2c; }
.badge.status-at_risk { background: #fdf0d2; color: #7a4b00; }
.badge.status-off_track { background: #fbe0e0; color: #8a1414; }
.badge.status-missed { background: #f6d0d0; color: #6e0f0f; }
.badge.status-stale { background: #e4e7eb; color: #323f4b; border: 1px dashed #7b8794; }
.grade { display: inline-block; padding: 1px 7px; border-radius: 4px; font-size: 12px;
  font-weight: 600; border: 1px solid transparent; }
.grade.grade-green { background: #d3f2dc; color: #0b4d22; }
.grade.grade-yellow { background: #fdf0d2; color: #7a4b00; }
.grade.grade-red { background: #fbe0e0; color: #8a1414; }
.grade.provisional { background: #fff; border-style: dashed; border-color: currentColor; }
.restated { display: inline-block; padding: 1px 7px; border-radius: 4px; font-size: 12px;
  font-weight: 600; background: #ede9fe; color: #4c1d95; }
.stale-note { color: #7a4b00; }
.checkin q { font-style: italic; color: #323f4b; }
.confidence { font-weight: 600; }
.confidence-high { color: #0b4d22; }
.confidence-medium { color: #7a4b00; }
.confidence-low { color: #8a1414; }
.confidence-flag { color: #8a1414; font-weight: 600; }
.progress { display: flex; align-items: center; gap: 10px; }
.bar { position: relative; flex: 0 0 320px; height: 14px; background: #e4e7eb; border-radius: 7px; }
.bar .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 7px; background: #3e4c59; }
.bar .fill.status-achieved { background: #2f8f4e; }
.bar .fill.status-on_track { background: #4caf6a; }
.bar .fill.status-at_risk { background: #e8a317; }
.bar .fill.status-off_track { background: #e05353; }
.bar .fill.status-missed { background: #b23a3a; }
.bar .fill.status-stale, .bar .fill.status-no_data, .bar .fill.status-not_started { background: #9aa5b1; }
.bar .expected { position: absolute; top: -4px; bottom: -4px; width: 3px; margin-left: -1px;
  background: #111827; border-radius: 1px; }
.numbers { font-size: 13px; white-space: nowrap; }
.history { display: flex; align-items: flex-end; gap: 6px; flex-wrap: wrap; margin-top: 10px;
  font-size: 12px; }
.history-label { color: #52606d; margin-right: 4px; align-self: center; }
.q-score { display: inline-flex; flex-direction: column; align-items: center; min-width: 58px;
  padding: 3px 4px 2px; border: 1px solid #dde1e6; border-radius: 6px; color: #1f2933;
  text-decoration: none; background: #ffffff; }
.q-score.current { border: 2px solid #1f2933; padding: 2px 3px 1px; }
.q-bar { position: relative; width: 14px; height: 24px; background: #eef0f2; border-radius: 2px; }
.q-bar .q-fill { position: absolute; left: 0; right: 0; bottom: 0; border-radius: 2px;
  background: #9aa5b1; }
.grade-green .q-fill { background: #4caf6a; }
.grade-yellow .q-fill { background: #e8a317; }
.grade-red .q-fill { background: #e05353; }
.q-label { color: #52606d; font-size: 11px; }
.q-value { font-weight: 600; }
.krs { margin-top: 12px; border-top: 1px solid #eef0f2; }
.kr { display: flex; gap: 20px; align-items: center; padding: 10px 0;
  border-bottom: 1px solid #eef0f2; }
.kr:last-child { border-bottom: none; }
.kr-info { flex: 1 1 0; min-width: 0; }
.kr-title { font-weight: 600; margin-bottom: 2px; }
.kr-meta { font-size: 12px; margin-bottom: 6px; }
.chart { flex: 0 0 auto; min-width: 200px; min-height: 60px; }
.chart.wide { display: block; width: 100%; }
.chart-error { color: #8a1414; font-size: 12px; }
.note { font-size: 13px; margin: 4px 0 10px; }
.children { margin-left: 22px; padding-left: 18px; border-left: 3px solid #cbd2d9; }
.node.context > .objective { opacity: 0.55; }
.node.context > .objective .krs, .node.context > .objective .history { display: none; }
.tree, .tree ul { list-style: none; margin: 0; padding: 0; }
.tree ul { margin-left: 12px; padding-left: 18px; border-left: 2px solid #cbd2d9; }
.tree-row { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; padding: 3px 0; }
.tree-row a { font-weight: 600; color: #1f2933; }
.tree-score { font-size: 13px; font-weight: 600; }
.tree-meta { font-size: 12px; }
.tree .node.context > .tree-row { opacity: 0.55; }
.no-match { font-size: 14px; padding: 12px 0; color: #52606d; }
.kpi-key { display: flex; gap: 18px; flex-wrap: wrap; font-size: 12px; color: #52606d; margin: 6px 0 0; }
.kpi-key .cell { display: inline-block; min-width: 64px; padding: 1px 6px; margin-right: 6px;
  border: 1px solid #b8c2cc; border-radius: 3px; text-align: center; color: #1f2933; }
.kpi-key .cell.no-target { background: #b4c3d4; }
.kpi-key .cell.no-data { background: repeating-linear-gradient(90deg, #ffffff 0 5px, #e6e1d9 5px 10px); }
"""

# Runs first in <body>: from here on, CSS may hide what the scripts can show again.
JS_FLAG = 'document.documentElement.className += " js";'

APP = """
(function () {
  "use strict";
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.quarter"));
  if (!sections.length) { return; }
  var picker = document.getElementById("quarter-select");
  var teamFilter = document.getElementById("team-filter");
  var ownerFilter = document.getElementById("owner-filter");
  var status = document.getElementById("filter-status");
  var drawn = {};

  function fail(el, message) {
    el.textContent = "Chart not rendered: " + message;
    el.classList.add("chart-error");
  }

  // The charts of a quarter are drawn the first time it is shown (a chart sized to its
  // container needs the container on screen).
  function draw(section) {
    if (drawn[section.id]) { return; }
    drawn[section.id] = true;
    var block = section.querySelector("script.okr-chart-specs");
    var specs = block ? JSON.parse(block.textContent) : {};
    Object.keys(specs).forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) { return; }
      if (typeof vegaEmbed !== "function") { fail(el, "the chart library did not load"); return; }
      vegaEmbed(el, specs[id], {actions: false, renderer: "canvas", mode: "vega-lite"})
        .catch(function (error) { fail(el, String(error)); });
    });
  }

  function current() {
    return document.querySelector("section.quarter.active") || sections[0];
  }

  function owners(node) {
    try { return JSON.parse(node.getAttribute("data-kr-owners") || "[]"); }
    catch (error) { return []; }
  }

  // A node (objective card, alignment-tree entry) matches when its team is the chosen one and
  // it or one of its key results has the chosen owner; it shows when it or a node below it
  // matches (an ancestor shown only for its children is dimmed: class "context").
  function applyFilters() {
    var team = teamFilter.value, owner = ownerFilter.value, section = current();
    var nodes = Array.prototype.slice.call(section.querySelectorAll(".node"));
    nodes.forEach(function (node) {
      var krs = node.querySelectorAll(":scope > .objective .kr");
      var self;
      if (node.getAttribute("data-kind") === "krs") {
        self = false;
        krs.forEach(function (kr) {
          var ok = (!team || kr.getAttribute("data-team") === team) &&
            (!owner || kr.getAttribute("data-owner") === owner);
          kr.hidden = !ok;
          self = self || ok;
        });
      } else {
        var own = node.getAttribute("data-owner");
        self = (!team || node.getAttribute("data-team") === team) &&
          (!owner || own === owner || owners(node).indexOf(owner) >= 0);
        krs.forEach(function (kr) {
          kr.hidden = !!owner && own !== owner && kr.getAttribute("data-owner") !== owner;
        });
      }
      node.setAttribute("data-match", self ? "yes" : "no");
    });
    nodes.forEach(function (node) {
      var self = node.getAttribute("data-match") === "yes";
      var below = node.querySelector('.node[data-match="yes"]') !== null;
      node.hidden = !(self || below);
      node.classList.toggle("context", !self && below);
    });
    var cards = section.querySelectorAll(".objectives .node:not([data-kind])");
    var matching = section.querySelectorAll('.objectives .node:not([data-kind])[data-match="yes"]');
    var filtering = !!(team || owner);
    status.textContent = filtering ?
      matching.length + " of " + cards.length + " objectives match" : "";
    var empty = section.querySelector(".no-match");
    if (empty) {
      empty.hidden = !filtering ||
        section.querySelector('.objectives .node[data-match="yes"]') !== null;
    }
  }

  function show(section) {
    sections.forEach(function (s) { s.classList.toggle("active", s === section); });
    picker.value = section.id;
    document.title = "OKR scorecard " + section.getAttribute("data-quarter");
    applyFilters();
    draw(section);
  }

  // #<quarter id> or #<id of anything inside a quarter> opens that quarter.
  function fromHash(scroll) {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id ? document.getElementById(id) : null;
    var section = target && target.closest("section.quarter");
    if (!section) { return false; }
    show(section);
    if (scroll && target !== section) { target.scrollIntoView(); }
    return true;
  }

  picker.addEventListener("change", function () {
    var section = document.getElementById(picker.value);
    if (!section) { return; }
    show(section);
    try { history.replaceState(null, "", "#" + section.id); } catch (error) { /* file: */ }
  });
  teamFilter.addEventListener("change", applyFilters);
  ownerFilter.addEventListener("change", applyFilters);
  window.addEventListener("hashchange", function () { fromHash(true); });
  if (!fromHash(true)) {
    show(document.querySelector("section.quarter[data-default]") || sections[0]);
  }
})();
"""

"""driftstream's Grafana dashboards, written as code.

Builds the three dashboards of ``grafana/dashboards/`` with the Grafana
Foundation SDK and writes them as JSON, which Grafana loads through the file
provider of ``grafana/provisioning/dashboards/driftstream.yaml``::

    uv run --frozen python grafana/generate.py          # (re)write the JSON
    uv run --frozen python grafana/generate.py --check  # exit 1 naming stale files

Dashboards
----------
``driftstream-overview``
    Drift of every model version at a glance (variables ``model``,
    ``version``).
``driftstream-model``
    One model's tests, data quality, output drift and performance
    (variables ``model``, ``version``, ``feature``; alert links open it
    with ``?var-model={model}&var-version={model_version}&var-feature={feature}``).
``driftstream-service``
    The workers themselves: traffic, lag, evaluation time, dead letters,
    alert sinks.

Notes
-----
Every query reads the ``datasource`` variable (``${datasource}``, a
Prometheus data source) and only series that a worker exports
(``monitor/metrics.py``), ``up`` or the recording rules of
``prometheus/rules/``; ``tests/test_dashboards.py`` checks that, and that
the committed JSON is what this module builds. Edit this file, never the
JSON.

Effect sizes are drawn against ``driftstream_drift_threshold``, the
warning and critical effect sizes each test's verdict needs, as the worker
exports them from the model's policy; the panel repeats per test, as
tests' effect sizes have different scales.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
OVERVIEW, MODEL, SERVICE = "driftstream-overview", "driftstream-model", "driftstream-service"
TAGS = ["driftstream"]
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
#: Label matchers of the selected model versions (multi-value: regex matches).
VERSIONS = 'model=~"$model", model_version=~"$version"'
FEATURES = f'{VERSIONS}, feature=~"$feature"'
SEVERITY_MAPPINGS: list[models.ValueMapping] = [
    models.ValueMap(
        options={
            "-1": models.ValueMappingResult(text="too little data", color="text", index=0),
            "0": models.ValueMappingResult(text="ok", color="green", index=1),
            "1": models.ValueMappingResult(text="warning", color="orange", index=2),
            "2": models.ValueMappingResult(text="critical", color="red", index=3),
        }
    )
]

Panel = Builder[models.Panel]


# -- building blocks ------------------------------------------------------


def query(
    expr: str, legend: str = "", ref_id: str = "A", *, instant: bool = False
) -> prometheus.Dataquery:
    """A Prometheus query on the ``datasource`` variable."""
    target = prometheus.Dataquery().expr(expr).ref_id(ref_id).datasource(DATASOURCE)
    if legend:
        target = target.legend_format(legend)
    return target.instant() if instant else target.range()


def queries(*specs: tuple[str, str]) -> list[prometheus.Dataquery]:
    """Range queries ``(expr, legend)`` with refIds A, B, C, ..."""
    return [query(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(specs)]


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    """Absolute thresholds: ``(None, base colour)`` then ``(value, colour)`` steps."""
    return (
        dashboard.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in steps])
    )


def graph(
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    unit: str = "short",
    width: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    """A time series panel."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )


def severity_graph(
    title: str, description: str, targets: Sequence[prometheus.Dataquery], width: int = 12
) -> timeseries.Panel:
    """Severities over time (-1 too little data, 0 ok, 1 warning, 2 critical), as steps."""
    return (
        graph(title, description, targets, width=width)
        .line_interpolation(common.LineInterpolation.STEP_AFTER)
        .min(-1)
        .max(2)
        .decimals(0)
        .mappings(SEVERITY_MAPPINGS)
        .thresholds(thresholds((None, "green"), (1, "orange"), (2, "red")))
        .thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    )


def big_number(
    title: str,
    description: str,
    target: prometheus.Dataquery,
    unit: str = "short",
    width: int = 6,
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
) -> stat.Panel:
    """A stat panel of the latest value of each series."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .unit(unit)
        .span(width)
        .height(5)
        .thresholds(thresholds(*steps))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def dashed(ref_id: str) -> tuple[models.MatcherConfig, list[models.DynamicConfigValue]]:
    """An override putting query ``ref_id`` on a dashed line."""
    return (
        models.MatcherConfig(id_val="byFrameRefID", options=ref_id),
        [
            models.DynamicConfigValue(
                id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
            )
        ],
    )


def statistic_on_right_axis(
    ref_id: str,
) -> tuple[models.MatcherConfig, list[models.DynamicConfigValue]]:
    """An override moving query ``ref_id`` of a severity graph to a dashed, plain right axis."""
    matcher, values = dashed(ref_id)
    return matcher, [
        models.DynamicConfigValue("custom.axisPlacement", "right"),
        *values,
        models.DynamicConfigValue("mappings", []),
        models.DynamicConfigValue("min", None),
        models.DynamicConfigValue("max", None),
        models.DynamicConfigValue("decimals", None),
    ]


def threshold_line(
    ref_id: str, color: str
) -> tuple[models.MatcherConfig, list[models.DynamicConfigValue]]:
    """An override drawing query ``ref_id`` as a dashed line of one colour."""
    matcher, values = dashed(ref_id)
    return matcher, [
        *values,
        models.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color}),
        models.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    ]


def link(title: str, uid: str, tooltip: str) -> dashboard.DashboardLink:
    """A link to another driftstream dashboard carrying time range and variables."""
    return (
        dashboard.DashboardLink(title)
        .type(models.DashboardLinkType.LINK)
        .url(f"/d/{uid}")
        .tooltip(tooltip)
        .icon("dashboard")
        .include_vars(True)
        .keep_time(True)
        .target_blank(False)
        .as_dropdown(False)
        .tags([])
    )


def model_link() -> dashboard.DashboardLink:
    """A table row's link to Model detail of the row's model, version and feature."""
    return (
        dashboard.DashboardLink("Model detail")
        .url(
            f"/d/{MODEL}?${{__url_time_range}}&${{datasource:queryparam}}"
            "&var-model=${__data.fields.model}"
            "&var-version=${__data.fields.model_version}"
            "&var-feature=${__data.fields.feature}"
        )
        .target_blank(False)
    )


def datasource_variable() -> dashboard.DatasourceVariable:
    """The ``datasource`` variable every query reads."""
    return dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(
    name: str, label: str, expr: str, *, multi: bool = True
) -> dashboard.QueryVariable:
    """A variable of a label's values (multi-value ones include All = ``.*``)."""
    variable = (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(expr)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    return variable.all_value(".*") if multi else variable


def assemble(
    uid: str,
    title: str,
    description: str,
    variables: Sequence[dashboard.DatasourceVariable | dashboard.QueryVariable],
    links: Sequence[dashboard.DashboardLink],
    rows: Sequence[tuple[str, Sequence[Panel]]],
) -> models.Dashboard:
    """A dashboard of rows of panels, with ids numbered in order."""
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .variables(list(variables))
        .links(list(links))
    )
    panel_id = 0
    for row_title, panels in rows:
        panel_id += 1
        board = board.with_row(dashboard.Row(row_title).id(panel_id))
        for panel in panels:
            panel_id += 1
            panel.build().id_val = panel_id  # builders hand out the object they build
            board = board.with_panel(panel)
    return board.build()


# -- dashboards -----------------------------------------------------------


def overview() -> models.Dashboard:
    """Drift overview: every selected model version, now and over time."""
    by_version = "by (model, model_version)"
    now = [
        big_number(
            "Drifted features",
            "Features whose latest window is warning or critical, per model version. "
            "Non-zero: open Model detail for which features and tests.",
            query(
                f"max {by_version} (driftstream_drifted_features{{{VERSIONS}}})",
                "{{model}} {{model_version}}",
                instant=True,
            ),
            steps=((None, "green"), (1, "orange")),
        ),
        big_number(
            "Alerts firing",
            "driftstream's own alerts now firing, per rule and model (not Alertmanager's). "
            "The alert message links the runbook and Model detail.",
            query(
                'sum by (rule, model) (driftstream_alerts_firing{model=~"$model"})',
                "{{rule}} {{model}}",
                instant=True,
            ),
            steps=((None, "green"), (1, "red")),
        ).no_value("0"),
        big_number(
            "Time since the last window",
            "How long ago each model version's latest window closed. Growing far past the "
            "window size: no traffic, or the owning worker is stuck or lagging "
            "(see Service health).",
            query(
                f"time() - max {by_version} "
                f"(driftstream_window_last_close_timestamp_seconds{{{VERSIONS}}})",
                "{{model}} {{model_version}}",
                instant=True,
            ),
            unit="s",
            steps=((None, "green"), (900, "orange"), (3600, "red")),
        ),
        big_number(
            "Reference age",
            "Age of the reference profile the latest window was compared with. Old "
            "references flag normal seasonal change as drift; absent for bootstrapped "
            "references.",
            query(
                f"max {by_version} (driftstream_reference_age_seconds{{{VERSIONS}}})",
                "{{model}} {{model_version}}",
                instant=True,
            ),
            unit="s",
            steps=((None, "green"), (30 * 86400, "orange")),
        ),
    ]
    worst = (
        table.Panel()
        .title("Worst effect sizes")
        .description(
            "The 15 largest effect sizes (what thresholds are compared with) of the latest "
            "windows, with each test's severity. Click a row for Model detail of that "
            "feature. feature=other is the worst of the features past max_features_per_model."
        )
        .datasource(DATASOURCE)
        .targets(
            [
                query(
                    "topk(15, max by (model, model_version, feature, test) "
                    f"(driftstream_drift_effect_size{{{VERSIONS}}}))",
                    ref_id="A",
                    instant=True,
                ).format(prometheus_models.PromQueryFormat.TABLE),
                query(
                    "max by (model, model_version, feature, test) "
                    f"(driftstream_drift_severity{{{VERSIONS}}})",
                    ref_id="B",
                    instant=True,
                ).format(prometheus_models.PromQueryFormat.TABLE),
            ]
        )
        .with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            models.DataTransformerConfig(
                id_val="filterByValue",
                options={
                    "type": "exclude",
                    "match": "any",
                    "filters": [
                        {"fieldName": "Value #A", "config": {"id": "isNull", "options": {}}}
                    ],
                },
            )
        )
        .with_transformation(
            models.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "renameByName": {"Value #A": "effect size", "Value #B": "severity"},
                },
            )
        )
        .with_transformation(
            models.DataTransformerConfig(
                id_val="sortBy", options={"sort": [{"field": "effect size", "desc": True}]}
            )
        )
        .override_by_name("severity", [models.DynamicConfigValue("mappings", SEVERITY_MAPPINGS)])
        .data_links([model_link()])
        .span(12)
        .height(8)
    )
    drifting = (
        table.Panel()
        .title("Drifting features")
        .description(
            "Every feature whose latest window is warning (1) or critical (2), per model "
            "version: what to look at first. Click a row for Model detail of that feature."
        )
        .datasource(DATASOURCE)
        .with_target(
            query(
                "max by (model, model_version, feature) "
                f"(driftstream_feature_severity{{{VERSIONS}}}) > 0",
                instant=True,
            ).format(prometheus_models.PromQueryFormat.TABLE)
        )
        .with_transformation(
            models.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": {"Value": "severity"}},
            )
        )
        .with_transformation(
            models.DataTransformerConfig(
                id_val="sortBy", options={"sort": [{"field": "severity", "desc": True}]}
            )
        )
        .override_by_name("severity", [models.DynamicConfigValue("mappings", SEVERITY_MAPPINGS)])
        .data_links([model_link()])
        .no_value("no feature drifting")
        .span(12)
        .height(8)
    )
    drift = [
        drifting,
        severity_graph(
            "Window severity",
            "Each model version's overall severity per closed window (the worst feature): "
            "0 ok, 1 warning, 2 critical, -1 too little data. Steps up that stay: real drift.",
            [
                query(
                    f"max {by_version} (driftstream_window_severity{{{VERSIONS}}})",
                    "{{model}} {{model_version}}",
                )
            ],
        ),
        worst,
        graph(
            "Drifted features over time",
            "How many features drifted per window. One feature flapping is noise or a "
            "tight threshold; many at once point at an upstream change (pipeline, schema, "
            "population).",
            [
                query(
                    f"max {by_version} (driftstream_drifted_features{{{VERSIONS}}})",
                    "{{model}} {{model_version}}",
                )
            ],
        ).decimals(0),
        severity_graph(
            "Prediction drift",
            "Drift of the model's output against the reference's output (solid: severity; "
            "dashed: each test's statistic, right axis). Output drift with no feature drift: "
            "look at features the reference does not profile.",
            [
                query(
                    f"max {by_version} (driftstream_prediction_drift_severity{{{VERSIONS}}})",
                    "{{model}} {{model_version}} severity",
                    "A",
                ),
                query(
                    "max by (model, model_version, test) "
                    f"(driftstream_prediction_drift_statistic{{{VERSIONS}}})",
                    "{{model}} {{model_version}} {{test}}",
                    "B",
                ),
            ],
        ).with_override(*statistic_on_right_axis("B")),
    ]
    traffic = [
        graph(
            "Performance against the reference",
            "Latest window's metric on joined labels (solid) and the reference's own "
            "(dashed). A gap that opens is the drift that costs; windows with few labels "
            "are noisy (see Model detail's label coverage).",
            queries(
                (
                    "max by (model, model_version, metric) "
                    f"(driftstream_performance{{{VERSIONS}}})",
                    "{{model}} {{model_version}} {{metric}}",
                ),
                (
                    "max by (model, model_version, metric) "
                    f"(driftstream_reference_performance{{{VERSIONS}}})",
                    "{{model}} {{model_version}} {{metric}} (reference)",
                ),
            ),
        ).with_override(*dashed("B")),
        graph(
            "Events/s",
            "Processed prediction events per second (5m rate, all workers). A drop to zero "
            "with traffic expected: the producer stopped or every event is dead-lettered.",
            [
                query(
                    "sum by (model, model_version) (model_version_outcome:driftstream_events:rate5m"
                    f'{{{VERSIONS}, outcome="processed"}})',
                    "{{model}} {{model_version}}",
                )
            ],
            unit="reqps",
            width=6,
        ),
        graph(
            "Dead-lettered share",
            "Share of each model's prediction events sent to the dead-letter topic (5m). "
            "Above 5% for 10 minutes raises DriftstreamDeadLetterRatioHigh; the reasons are "
            "on Service health.",
            [
                query(
                    'model:driftstream_events_dead_lettered:ratio_rate5m{model=~"$model"}',
                    "{{model}}",
                )
            ],
            unit="percentunit",
            width=6,
        )
        .thresholds(thresholds((None, "green"), (0.05, "red")))
        .thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        ),
    ]
    return assemble(
        OVERVIEW,
        "driftstream: drift overview",
        "Drift of every model version driftstream monitors: start here.",
        [
            datasource_variable(),
            label_variable("model", "Model", "label_values(driftstream_window_severity, model)"),
            label_variable(
                "version",
                "Version",
                'label_values(driftstream_window_severity{model=~"$model"}, model_version)',
            ),
        ],
        [
            link("Model detail", MODEL, "Tests, data quality and performance of one model"),
            link("Service health", SERVICE, "The workers: traffic, lag, evaluation, sinks"),
        ],
        [("Now", now), ("Drift", drift), ("Performance and traffic", traffic)],
    )


def model_detail() -> models.Dashboard:
    """Model detail: one model's tests, quality, output drift and performance."""
    by_test = "by (model_version, feature, test)"
    by_feature = "by (model_version, feature)"
    legend_test = "{{feature}} {{test}} ({{model_version}})"
    legend_feature = "{{feature}} ({{model_version}})"
    by_level = "by (model_version, test, level)"
    of_test = f'{FEATURES}, test=~"$test"'
    tests = [
        graph(
            "Effect size: $test",
            "The test's effect size per feature and window (solid) against the effect "
            "sizes its warning (orange, dashed) and critical (red, dashed) verdicts need. "
            "Above a line is a verdict only if the adjusted p-value is below alpha too "
            "(see Adjusted p-values and Test severity). One panel per test.",
            queries(
                (f"max {by_test} (driftstream_drift_effect_size{{{of_test}}})", legend_test),
                (
                    f'max {by_level} (driftstream_drift_threshold{{{of_test}, level="warning"}})',
                    "{{test}} warning ({{model_version}})",
                ),
                (
                    f'max {by_level} (driftstream_drift_threshold{{{of_test}, level="critical"}})',
                    "{{test}} critical ({{model_version}})",
                ),
            ),
        )
        .repeat("test")
        .repeat_direction("h")
        .max_per_row(2)
        .with_override(*threshold_line("B", "orange"))
        .with_override(*threshold_line("C", "red")),
        severity_graph(
            "Test severity",
            "Each test's verdict per window: 1 warning and 2 critical mean its effect size "
            "crossed that threshold and its adjusted p-value was below alpha. The feature "
            "takes the worst of its tests.",
            [query(f"max {by_test} (driftstream_drift_severity{{{FEATURES}}})", legend_test)],
        ),
        graph(
            "Adjusted p-values",
            "Each test's multiplicity-adjusted p-value (log scale); below alpha (default "
            "0.01) the test is significant. Tiny p-values with small effects are large "
            "windows seeing harmless change.",
            [query(f"min {by_test} (driftstream_drift_p_value{{{FEATURES}}})", legend_test)],
        ).scale_distribution(
            common_builders.ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10)
        ),
        graph(
            "Test statistics",
            "Each test's raw statistic (KS D, PSI, chi-square, ...). Grows with window size "
            "for some tests: compare windows of equal size only.",
            [query(f"max {by_test} (driftstream_drift_statistic{{{FEATURES}}})", legend_test)],
        ),
        severity_graph(
            "Feature severity",
            "Each feature's severity per window (the worst of its tests); -1: fewer than "
            "min_samples non-null values.",
            [
                query(
                    f"max {by_feature} (driftstream_feature_severity{{{FEATURES}}})",
                    legend_feature,
                )
            ],
            width=18,
        ),
        big_number(
            "Features folded into other",
            'Features past max_features_per_model, reported together as feature="other" '
            "(with the worst of their values). Non-zero: drift under other may be in any "
            "of them; see the window results topic for which.",
            query(
                f"max by (model_version) (driftstream_features_folded{{{VERSIONS}}})",
                "{{model_version}}",
                instant=True,
            ),
            steps=((None, "green"), (1, "orange")),
        ).height(8),
    ]
    quality = [
        graph(
            title,
            description,
            [query(f"max {by_feature} ({metric}{{{FEATURES}}})", legend_feature)],
            unit="percentunit",
            width=8,
        )
        for title, metric, description in (
            (
                "Null share",
                "driftstream_null_ratio",
                "Share of each feature's values that were null in the window. A jump is "
                "usually an upstream pipeline failure, not drift in the population.",
            ),
            (
                "Out-of-range share",
                "driftstream_out_of_range_ratio",
                "Share of numeric values outside the reference's range: new units, new "
                "encodings or a genuinely new population.",
            ),
            (
                "Unseen category share",
                "driftstream_unseen_category_ratio",
                "Share of categorical values the reference did not keep: new categories "
                "(a new product, a renamed code).",
            ),
        )
    ]
    output = [
        severity_graph(
            "Prediction drift",
            "Drift of the model's output (solid: severity; dashed: each test's statistic, "
            "right axis). Output drift without feature drift: look at unmonitored inputs.",
            [
                query(
                    f"max by (model_version) (driftstream_prediction_drift_severity{{{VERSIONS}}})",
                    "severity ({{model_version}})",
                    "A",
                ),
                query(
                    "max by (model_version, test) "
                    f"(driftstream_prediction_drift_statistic{{{VERSIONS}}})",
                    "{{test}} ({{model_version}})",
                    "B",
                ),
            ],
        ).with_override(*statistic_on_right_axis("B")),
        graph(
            "Performance against the reference",
            "The window's metric on joined labels (solid) against the reference's own "
            "(dashed). Read it with the label coverage: few labels, noisy metric.",
            queries(
                (
                    f"max by (model_version, metric) (driftstream_performance{{{VERSIONS}}})",
                    "{{metric}} ({{model_version}})",
                ),
                (
                    "max by (model_version, metric) "
                    f"(driftstream_reference_performance{{{VERSIONS}}})",
                    "{{metric}} reference ({{model_version}})",
                ),
            ),
        ).with_override(*dashed("B")),
        graph(
            "Label coverage",
            "Share of the window's predictions that got a label. Low coverage: the label "
            "producer is late or broken, and the performance panel means little.",
            [
                query(
                    f"max by (model_version) (driftstream_label_coverage_ratio{{{VERSIONS}}})",
                    "{{model_version}}",
                )
            ],
            unit="percentunit",
            width=8,
        )
        .min(0)
        .max(1),
        graph(
            "Label delay",
            "Mean time from prediction to label in the window. Labels arriving after "
            "label_join_ttl are dead-lettered as unmatched.",
            [
                query(
                    f"max by (model_version) (driftstream_label_delay_seconds{{{VERSIONS}}})",
                    "{{model_version}}",
                )
            ],
            unit="s",
            width=8,
        ),
        graph(
            "Window size",
            "Events in each closed window. Small windows have little power (noisy "
            "verdicts); time windows shrink when traffic does.",
            [
                query(
                    f"max by (model_version) (driftstream_window_events{{{VERSIONS}}})",
                    "{{model_version}}",
                )
            ],
            width=8,
        ).decimals(0),
    ]
    return assemble(
        MODEL,
        "driftstream: model detail",
        "One model's drift tests, data quality, output drift and performance. Alert links "
        "open it with var-model, var-version and var-feature.",
        [
            datasource_variable(),
            label_variable(
                "model",
                "Model",
                "label_values(driftstream_window_severity, model)",
                multi=False,
            ),
            label_variable(
                "version",
                "Version",
                'label_values(driftstream_window_severity{model=~"$model"}, model_version)',
            ),
            label_variable(
                "feature",
                "Feature",
                "label_values(driftstream_feature_severity"
                '{model=~"$model", model_version=~"$version"}, feature)',
            ),
            label_variable(
                "test",
                "Test",
                "label_values(driftstream_drift_effect_size"
                '{model=~"$model", model_version=~"$version"}, test)',
            ),
        ],
        [
            link("Drift overview", OVERVIEW, "Every model version at a glance"),
            link("Service health", SERVICE, "The workers: traffic, lag, evaluation, sinks"),
        ],
        [("Drift tests", tests), ("Data quality", quality), ("Model output and labels", output)],
    )


def service_health() -> models.Dashboard:
    """Service health: the workers, whatever model they monitor."""
    quantile = (
        "histogram_quantile({q}, sum by (le) "
        "(rate(driftstream_window_evaluation_seconds_bucket[$__rate_interval])))"
    )
    workers = [
        big_number(
            "Workers up",
            "Each scraped worker: 1 up, 0 down (Prometheus cannot scrape it). A down worker's "
            "partitions are evaluated by no one until the group rebalances.",
            query('up{job="driftstream"}', "{{instance}}", instant=True),
            width=8,
            steps=((None, "red"), (1, "green")),
        )
        .height(8)
        .mappings(
            [
                models.ValueMap(
                    options={
                        "0": models.ValueMappingResult(text="down", color="red", index=0),
                        "1": models.ValueMappingResult(text="up", color="green", index=1),
                    }
                )
            ]
        ),
        graph(
            "Prediction events/s by outcome",
            "Prediction events per second (5m rate) by outcome: processed, bootstrap or a "
            "dead-letter reason. Anything but processed growing: see Dead letters by reason.",
            [
                query(
                    "sum by (outcome) (model_version_outcome:driftstream_events:rate5m)",
                    "{{outcome}}",
                )
            ],
            unit="reqps",
            width=8,
        ),
        graph(
            "Label events/s by outcome",
            "Label events per second by outcome: joined, or why not (unmatched_label: its "
            "prediction never came or came too long before).",
            [
                query(
                    "sum by (outcome) (rate(driftstream_labels_total[$__rate_interval]))",
                    "{{outcome}}",
                )
            ],
            unit="reqps",
            width=8,
        ),
    ]
    processing = [
        graph(
            "Consumer lag per partition",
            "Messages behind the high-water mark per owned partition. Growing steadily: the "
            "workers cannot keep up (add workers or partitions); one partition only: a hot "
            "key or a stuck worker.",
            [
                query(
                    "max by (topic, partition) (driftstream_consumer_lag_messages)",
                    "{{topic}}/{{partition}}",
                )
            ],
        ),
        graph(
            "Consumer lag per topic",
            "Total lag per input topic (all partitions, all workers). Above 10000 and "
            "growing for 15 minutes raises DriftstreamConsumerLagGrowing.",
            [query("topic:driftstream_consumer_lag_messages:sum", "{{topic}}")],
        ),
        graph(
            "Window evaluation time",
            "Time to compare a closed window with its reference: quantiles over all workers "
            "and each worker's 5m p95. p95 above 1 s for 15 minutes raises "
            "DriftstreamWindowEvaluationSlow; the worker then falls behind.",
            queries(
                (quantile.format(q="0.5"), "p50"),
                (quantile.format(q="0.95"), "p95"),
                (quantile.format(q="0.99"), "p99"),
                ("instance:driftstream_window_evaluation_seconds:p95_rate5m", "p95 {{instance}}"),
            ),
            unit="s",
        ),
        graph(
            "Windows closed/s",
            "Closed windows per second by severity, and windows skipped (no reference yet, "
            "or it changed inside a sliding window). Skips that persist: publish a reference.",
            queries(
                (
                    "sum by (severity) (rate(driftstream_windows_total[$__rate_interval]))",
                    "{{severity}}",
                ),
                ("sum(rate(driftstream_windows_skipped_total[$__rate_interval]))", "skipped"),
            ),
            unit="reqps",
        ),
        graph(
            "Dead letters by reason",
            "Messages per second sent to the dead-letter topic, by reason (schema, late, "
            "unmatched_label, ...). Read the topic for samples of the failing messages.",
            [
                query(
                    "sum by (reason) (rate(driftstream_dead_letters_total[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            unit="reqps",
            width=24,
        ),
    ]
    sinks = [
        graph(
            "Sink deliveries/s",
            "Finished alert deliveries per sink: delivered, or dead_lettered (gave up after "
            "retries; DriftstreamSinkDeliveriesFailing fires).",
            [
                query(
                    "sum by (sink, outcome) "
                    "(rate(driftstream_sink_deliveries_total[$__rate_interval]))",
                    "{{sink}} {{outcome}}",
                )
            ],
            unit="reqps",
            width=8,
        ),
        graph(
            "Sink attempts/s",
            "Delivery attempts per sink, retries included. Attempts well above deliveries: "
            "the receiver is failing and being retried.",
            [
                query(
                    "sum by (sink) (rate(driftstream_sink_attempts_total[$__rate_interval]))",
                    "{{sink}}",
                )
            ],
            unit="reqps",
            width=8,
        ),
        graph(
            "Sink queue depth",
            "Alert transitions each sink has not delivered yet (queued or being retried). "
            "Above 10 and growing: the receiver is slow or unreachable "
            "(DriftstreamSinkQueueGrowing).",
            [query("sum by (sink) (driftstream_sink_queue)", "{{sink}}")],
            width=8,
        ).decimals(0),
        graph(
            "Oldest undelivered alert",
            "Age of the oldest transition each sink is still retrying. Over 15 minutes: the "
            "receiver is down (DriftstreamSinkDeliveryDelayed); at the sink's "
            "delivery_timeout (6 h by default) it is dead-lettered.",
            [
                query(
                    "max by (sink) (driftstream_sink_oldest_undelivered_seconds)",
                    "{{sink}}",
                )
            ],
            unit="s",
            width=8,
        ),
        graph(
            "Alert transitions/s",
            "driftstream's alert transitions per rule and status (pending, firing, resolved, "
            "cleared). Firing and resolving over and over: a flapping rule, tune fire_after / "
            "resolve_after.",
            [
                query(
                    "sum by (rule, status) "
                    "(rate(driftstream_alert_transitions_total[$__rate_interval]))",
                    "{{rule}} {{status}}",
                )
            ],
            unit="reqps",
            width=24,
        ),
    ]
    return assemble(
        SERVICE,
        "driftstream: service health",
        "The driftstream workers: up, traffic, consumer lag, evaluation time, dead letters, "
        "alert sinks.",
        [datasource_variable()],
        [
            link("Drift overview", OVERVIEW, "Every model version at a glance"),
            link("Model detail", MODEL, "Tests, data quality and performance of one model"),
        ],
        [("Workers and traffic", workers), ("Processing", processing), ("Alerts", sinks)],
    )


# -- output ---------------------------------------------------------------


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana JSON (a dict), by uid."""
    boards = [overview(), model_detail(), service_health()]
    return {str(board.uid): json.loads(json.dumps(board, cls=JSONEncoder)) for board in boards}


def render(board: dict[str, Any]) -> str:
    """The file text of a dashboard: sorted keys, two-space indent, final newline."""
    return json.dumps(board, cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def outputs(directory: Path = DASHBOARDS_DIR) -> dict[Path, str]:
    """The file of every dashboard and the text it must have."""
    return {directory / f"{uid}.json": render(board) for uid, board in dashboards().items()}


def stale(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Dashboard files that differ from what this module builds, or that it does not build."""
    expected = outputs(directory)
    wrong = [
        path
        for path, text in expected.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    extra = [path for path in sorted(directory.glob("*.json")) if path not in expected]
    return wrong + extra


def panel_queries() -> Iterator[tuple[str, str, str]]:
    """Every query of every dashboard: ``(dashboard uid, panel title, expr)``.

    The expressions are as Grafana stores them, variables unsubstituted. To
    run one against Prometheus, replace:

    - ``$__rate_interval`` with a duration (e.g. ``1m``, at least four
      scrape intervals);
    - ``$model``, ``$version`` and ``$feature``: they only appear inside
      regex matchers (``model=~"$model"``, ``model_version=~"$version"``,
      ``feature=~"$feature"``), so a regex fits: a value, ``a|b`` or ``.*``
      (what the multi-value variables' All sends).

    ``${datasource}`` appears in the data source references, never in an
    expression.

    Examples
    --------
    >>> sorted({uid for uid, _, _ in panel_queries()})
    ['driftstream-model', 'driftstream-overview', 'driftstream-service']
    """
    for uid, board in dashboards().items():
        for panel in board.get("panels", []):
            for target in panel.get("targets") or []:
                yield uid, str(panel["title"]), str(target["expr"])


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` report stale ones (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 listing stale files"
    )
    args = parser.parse_args(argv)
    if args.check:
        files = stale()
        for path in files:
            print(f"stale: {path} (run: uv run --frozen python grafana/generate.py)")
        return 1 if files else 0
    DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in outputs().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

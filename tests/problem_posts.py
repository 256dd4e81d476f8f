"""Graded posts filed under problems through the real Store, as the job's
grouping files them, for the problem and report pages' tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from graded_posts import T0, make_assessment

from items import Author, Engagement, Item
from signals.problems import STATE_VERSION, Incident, Problem
from storage import Store
from storage.rows import GroupingChanges, PostAssignment


class ProblemFiler:
    """Stores graded posts and files each under a problem and an incident.

    Posts of one problem must be filed in time order, as the job files them.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.problems: dict[int, Problem] = {}
        self.labels: dict[int, tuple[str, str | None]] = {}
        self.incidents: dict[int, Incident] = {}

    def file(
        self,
        external_id: str,
        problem_id: int,
        incident_id: int,
        *,
        label: str = "QC7 · 刹车失灵",
        root_cause: str | None = "product",
        posted: datetime = T0,
        text: str = "QC7 刹车失灵，4S店不给修",
        author: str | None = "车主小王",
        title: str | None = None,
        url: str | None = None,
        report: bool = True,
        kind: str = "complaint",
        level: str | None = "medium",
        deadline: datetime | None = None,
        model: str = "QC7",
    ) -> int:
        """Store one post filed under the problem; return its id."""
        item = Item(
            source="weibo-rss",
            platform="weibo",
            external_id=external_id,
            text=text,
            title=title,
            collected_at=posted + timedelta(minutes=5),
            created_at=posted,
            url=url or f"https://weibo.example/{external_id}",
            author=Author(name=author, followers=300),
            engagement=Engagement(likes=2, reposts=1, comments=0),
        )
        [post_id] = self.store.add_items([item])
        assert post_id is not None

        problem = self.problems.setdefault(
            problem_id, Problem(problem_id, model, "刹车")
        )
        self.labels[problem_id] = (label, root_cause)
        incident = self._incident(problem, incident_id, external_id, posted, report)
        problem.models[model] += 1
        grouping = GroupingChanges(
            state_version=STATE_VERSION,
            assignments=(
                PostAssignment(
                    post_id, problem_id, incident_id, report, "term", posted
                ),
            ),
            problems=({**problem.to_dict(), "label": label, "root_cause": root_cause},),
            incidents=(incident.to_dict(),),
        )
        assessment = make_assessment(
            kind, level, deadline or posted + timedelta(hours=12)
        )
        classification = replace(assessment.classification, root_cause=root_cause)
        assessment = replace(assessment, classification=classification)
        self.store.save_assessments([post_id], [assessment], grouping=grouping)
        return post_id

    def _incident(
        self,
        problem: Problem,
        incident_id: int,
        external_id: str,
        posted: datetime,
        report: bool,
    ) -> Incident:
        incident = self.incidents.setdefault(
            incident_id, Incident(incident_id, problem.id)
        )
        incident.posts[f"weibo-rss:{external_id}"] = report
        incident.first_seen = min(incident.first_seen or posted, posted)
        incident.last_seen = max(incident.last_seen or posted, posted)
        if incident_id not in problem.incident_ids:
            problem.incident_ids.append(incident_id)
        problem.posts += 1
        problem.reports += int(report)
        problem.first_seen = min(problem.first_seen or posted, posted)
        problem.last_seen = max(problem.last_seen or posted, posted)
        return incident

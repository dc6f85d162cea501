"""The score stage: from a graded total to the score a student gets.

- ``questions``: a question's and its parts' scores from the credits the runner decided;
- ``status``: a graded notebook's status; which statuses carry a score, which are graded again;
- ``late``: the late policy (grader_config.LATE_POLICY) as a factor;
- ``overrides``: a TA's decisions (question scores, a whole-assignment score, an excuse) applied to a grade;
- ``final``: the one function that puts them together (raw total, final score), used by the gradebook.

The credits come from ``autograder.check.runner``; the total from ``autograder.grade``. Nothing here touches storage: ``autograder.record.gradebook`` reads the rows and
calls ``final.score``.
"""

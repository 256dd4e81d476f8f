"""Early-warning signals computed over graded posts.

Problems (同类投诉) group similar complaints and grievances as they arrive,
burst detectors watch each problem's hourly counts against its own baseline,
and the virality forecast predicts a post's reposts a day ahead from its first
engagement snapshots.
"""

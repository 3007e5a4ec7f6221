# Run through `bugsink-manage shell -c`: a superuser, a team, a warm-up
# project and the measured project; prints "<warm id> <warm dsn> <id> <dsn>".
from django.contrib.auth import get_user_model

from projects.models import Project, ProjectMembership, ProjectRole
from teams.models import Team, TeamMembership, TeamRole

User = get_user_model()
user = User.objects.filter(username="admin@example.com").first() or User.objects.create_superuser(
    username="admin@example.com", email="admin@example.com", password="admin")
team, _ = Team.objects.get_or_create(name="bench")
TeamMembership.objects.get_or_create(team=team, user=user, defaults={"role": TeamRole.ADMIN, "accepted": True})
out = []
for name in ("warm-up", "bench"):
    project = Project.objects.create(name=name, team=team)
    ProjectMembership.objects.get_or_create(
        project=project, user=user, defaults={"role": ProjectRole.ADMIN, "accepted": True})
    out += [str(project.id), project.dsn]
print(" ".join(out))

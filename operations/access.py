"""Which railcars an operator (or a senior inspector, or an admin) may see in the operator
application: those of the lines granted to them (`labeling.lines`). A railcar of another line
answers the same 404 as one that does not exist."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from labeling.lines import OPERATE_LINE, line_names
from labeling.models import Railcar

User = AbstractBaseUser | AnonymousUser


def visible_railcars(user: User) -> QuerySet[Railcar]:
    names = line_names(user, OPERATE_LINE)
    railcars = Railcar.objects.all()
    return railcars if names is None else railcars.filter(line__in=names)


def railcar_for(user: User, railcar_id: int) -> Railcar:
    railcar = visible_railcars(user).filter(pk=railcar_id).first()
    if railcar is None:
        raise Http404("No such unloading.")
    return railcar

"""Extension instances, bound to the app in create_app()."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from app.db.replicas import RoutedSession
from app.models import Base
from app.web.smorest import Api

# RoutedSession: a request's reads may be bound to a replica (app/db/replicas.py).
db = SQLAlchemy(model_class=Base, session_options={"class_": RoutedSession})
migrate = Migrate()
api = Api()

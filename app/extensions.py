"""Extension instances, bound to the app in create_app()."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from app.api.smorest import Api
from app.models import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = Api()

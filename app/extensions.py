"""Extension instances, bound to the app in create_app()."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from app.models import Base
from app.web.smorest import Api

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = Api()

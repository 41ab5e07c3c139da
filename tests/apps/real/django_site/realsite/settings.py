"""A minimal Django 5.2 project with the admin, as `django-admin startproject` makes it, less what
the admin does not need. The database file and the collected static files live where the test says
(REALSITE_DB, REALSITE_STATIC_ROOT), so each run starts from nothing."""
import os

SECRET_KEY = 'pywsgi-tests-only-not-secret'
DEBUG = False  # as in production: Django serves no static files, the server's --url-alias does
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']

INSTALLED_APPS = [
    'django.contrib.admin',
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'django.contrib.messages',
    'django.contrib.staticfiles',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
    'django.contrib.messages.middleware.MessageMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]

ROOT_URLCONF = 'realsite.urls'
WSGI_APPLICATION = 'realsite.wsgi.application'

TEMPLATES = [{
    'BACKEND': 'django.template.backends.django.DjangoTemplates',
    'DIRS': [],
    'APP_DIRS': True,
    'OPTIONS': {'context_processors': [
        'django.template.context_processors.request',
        'django.contrib.auth.context_processors.auth',
        'django.contrib.messages.context_processors.messages',
    ]},
}]

DATABASES = {'default': {
    'ENGINE': 'django.db.backends.sqlite3',
    'NAME': os.environ.get('REALSITE_DB', os.path.join(os.path.dirname(__file__), 'db.sqlite3')),
}}

# A test login needs no slow hash (the default PBKDF2 takes ~1 s of CPU per login here).
PASSWORD_HASHERS = ['django.contrib.auth.hashers.MD5PasswordHasher']

USE_TZ = True
STATIC_URL = '/static/'
STATIC_ROOT = os.environ.get('REALSITE_STATIC_ROOT')
DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'
LOGGING = {'version': 1, 'disable_existing_loggers': False,
           'handlers': {'stderr': {'class': 'logging.StreamHandler'}},
           'root': {'handlers': ['stderr'], 'level': 'WARNING'}}
